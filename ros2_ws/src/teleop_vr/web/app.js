// The teleop_vr page: renders the scene locally with three.js (geometry once, body poses streamed),
// in an immersive-vr session with the headset's own head tracking, or on the desktop with a mouse
// orbit. In VR the controller (grip = clutch, trigger = jaw) streams to webxr_server, which turns it
// into /leader/joint_states. Protocol: teleop_vr/protocol.py. Test hooks: window.teleop.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';

const params = new URLSearchParams(location.search);
// the pairing token: from the URL (a LAN browser, the printed QR code) or from the page itself (served to
// this machine only); the WebSocket is refused without it
const token = params.get('token') || document.querySelector('meta[name="so100-pairing-token"]')?.content || null;
const epochMs = () => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------- WebXR emulation (tests, no headset)
if (params.get('emulate') === 'quest') {
  await new Promise((resolve, reject) => {
    const s = document.createElement('script');
    s.src = '/vendor/iwer/build/iwer.min.js';
    s.onload = resolve; s.onerror = () => reject(new Error('iwer failed to load'));
    document.head.appendChild(s);
  });
  const device = new window.IWER.XRDevice(window.IWER.metaQuest3);
  device.installRuntime({ forceInstall: true });
  window.xrDevice = device;
}

const state = window.teleop = {
  connected: false, id: null, controller: null, engaged: false, scene: false, geometry: 0,
  posesReceived: 0, lastPoseAt: 0, lastSeq: 0, latencies: [], clockOffset: 0, rtt: null,
  frames: 0, inXR: false, inputsSent: 0, errors: [], images: {},
};

// ---------------------------------------------------------------- renderer and scene
const renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
renderer.setSize(window.innerWidth, window.innerHeight);
renderer.xr.enabled = true;
renderer.xr.setReferenceSpaceType('local-floor');
document.body.appendChild(renderer.domElement);

const scene = new THREE.Scene();
scene.background = new THREE.Color(0x202428);
scene.add(new THREE.HemisphereLight(0xffffff, 0x404040, 1.6));
const sun = new THREE.DirectionalLight(0xffffff, 1.6);
sun.position.set(0.5, 2, 1);
scene.add(sun);

// ROS (z up) -> three.js (y up); in VR the root is also moved in front of the operator.
const root = new THREE.Group();
root.rotation.x = -Math.PI / 2;
scene.add(root);
const frames = new Map();  // frame name -> Group in root (world-frame poses from /tf)

const camera = new THREE.PerspectiveCamera(50, window.innerWidth / window.innerHeight, 0.01, 50);
const HOME = { position: new THREE.Vector3(0.45, 0.5, 0.75), target: new THREE.Vector3(0.04, 0.05, 0.22) };
const controls = new OrbitControls(camera, renderer.domElement);
// Desktop mode renders on demand (a pose, the scene, an image, the mouse): an idle main thread takes
// each WebSocket message at once instead of after a frame in progress (software GL draws slowly).
let dirty = true;
const invalidate = () => { dirty = true; };
controls.addEventListener('change', invalidate);
function recenterDesktop() {
  camera.position.copy(HOME.position);
  controls.target.copy(HOME.target);
  controls.update();
}
recenterDesktop();

function frameGroup(name) {
  let g = frames.get(name);
  if (!g) {
    g = new THREE.Group();
    g.name = name;
    g.visible = name === 'world';
    root.add(g);
    frames.set(name, g);
  }
  return g;
}

const GEOMETRY = {
  box: new THREE.BoxGeometry(1, 1, 1),
  sphere: new THREE.SphereGeometry(0.5, 24, 16),
  cylinder: new THREE.CylinderGeometry(0.5, 0.5, 1, 32).rotateX(Math.PI / 2),  // axis along z, as in ROS
};

function setScene(msg) {
  for (const g of frames.values()) g.clear();
  for (const item of msg.geometry) {
    const geom = GEOMETRY[item.type];
    if (!geom) continue;
    const [r, g, b, a] = item.color;
    const mat = new THREE.MeshStandardMaterial({
      color: new THREE.Color(r, g, b), roughness: 0.7, metalness: 0.05, transparent: a < 1, opacity: a });
    const mesh = new THREE.Mesh(geom, mat);
    mesh.name = item.name;
    mesh.position.set(item.pose[0], item.pose[1], item.pose[2]);
    mesh.quaternion.set(item.pose[3], item.pose[4], item.pose[5], item.pose[6]);
    mesh.scale.set(item.scale[0], item.scale[1], item.scale[2]);
    frameGroup(item.frame).add(mesh);
  }
  state.scene = true;
  state.geometry = msg.geometry.length;
}

function setPoses(msg) {
  for (const [name, p] of Object.entries(msg.frames)) {
    const g = frameGroup(name);
    g.position.set(p[0], p[1], p[2]);
    g.quaternion.set(p[3], p[4], p[5], p[6]);
    g.visible = true;
  }
  const now = epochMs();
  state.posesReceived += 1;
  state.lastPoseAt = performance.now();
  state.lastSeq = msg.seq;
  state.lastFrames = msg.frames;
  if (msg.stamp_ns) {
    state.latencies.push(now - msg.stamp_ns / 1e6);  // same clock on one machine; see latencyMs below
    if (state.latencies.length > 20000) state.latencies.splice(0, 10000);
  }
}

// ---------------------------------------------------------------- camera panels
const panels = {};
let panelsVisible = params.get('panels') !== '0';
function setImage(msg) {
  let panel = panels[msg.camera];
  if (!panel) {
    const img = new Image();
    const tex = new THREE.Texture(img);
    tex.colorSpace = THREE.SRGBColorSpace;
    img.onload = () => { tex.needsUpdate = true; panel.mesh.scale.set(1, img.height / img.width, 1); };
    const mesh = new THREE.Mesh(new THREE.PlaneGeometry(0.24, 0.24), new THREE.MeshBasicMaterial({ map: tex }));
    const index = Object.keys(panels).length;
    const side = index % 2 ? 1 : -1;  // ROS anchors: either side of the arm in VR, behind it on the desktop
    mesh.userData.anchor = new THREE.Vector3(0.32 * side, -0.2, 0.38);
    mesh.userData.desktopAnchor = new THREE.Vector3(0.2 * side, 0.35, 0.3);
    scene.add(mesh);
    panel = panels[msg.camera] = { img, tex, mesh };
  }
  panel.img.src = 'data:image/jpeg;base64,' + msg.jpeg;
  state.images[msg.camera] = (state.images[msg.camera] || 0) + 1;
}
function placePanels(viewer) {
  for (const p of Object.values(panels)) {
    p.mesh.visible = panelsVisible;
    const anchor = state.inXR ? p.mesh.userData.anchor : p.mesh.userData.desktopAnchor;
    p.mesh.position.copy(root.localToWorld(anchor.clone()));
    p.mesh.lookAt(viewer);
  }
}

// ---------------------------------------------------------------- WebSocket
let ws = null;
function connect() {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`
    + (token ? `?token=${encodeURIComponent(token)}` : '');
  ws = new WebSocket(url);
  ws.onopen = () => {
    state.connected = true;
    send({ type: 'hello', client: state.inXR ? 'xr' : 'desktop' });
  };
  ws.onclose = () => { state.connected = false; setTimeout(connect, 1000); };
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === 'scene' || msg.type === 'poses' || msg.type === 'image') dirty = true;
    switch (msg.type) {
      case 'welcome': state.id = msg.id; break;
      case 'scene': setScene(msg); break;
      case 'poses': setPoses(msg); break;
      case 'image': setImage(msg); break;
      case 'status': state.controller = msg.controller; state.engaged = msg.engaged; state.target = msg.target; break;
      case 'pong': {
        const now = epochMs();
        state.rtt = now - msg.t;
        state.clockOffset = msg.server_ms - (msg.t + state.rtt / 2);
        break;
      }
      case 'error': state.errors.push(msg.error); if (state.errors.length > 50) state.errors.shift(); break;
    }
  };
}
function send(obj) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj));
}
setInterval(() => send({ type: 'ping', t: epochMs() }), 1000);
connect();

// ---------------------------------------------------------------- VR session
const enterButton = document.getElementById('enter-vr');
if (navigator.xr) {
  navigator.xr.isSessionSupported('immersive-vr').then((ok) => { enterButton.hidden = !ok; }).catch(() => {});
}
enterButton.onclick = () => enterVR();
async function enterVR() {
  const session = await navigator.xr.requestSession('immersive-vr', { optionalFeatures: ['local-floor'] });
  await renderer.xr.setSession(session);
  state.inXR = true;
  session.addEventListener('end', () => {
    state.inXR = false;
    root.position.set(0, 0, 0);
    root.quaternion.setFromEuler(new THREE.Euler(-Math.PI / 2, 0, 0));
    send({ type: 'release' });
  });
  needsRecenter = true;
}
state.enterVR = enterVR;

// controller stand-ins (no model download from a CDN)
const grips = [0, 1].map((i) => {
  const grip = renderer.xr.getControllerGrip(i);
  grip.add(new THREE.Mesh(new THREE.BoxGeometry(0.03, 0.03, 0.1), new THREE.MeshStandardMaterial({ color: 0x888888 })));
  scene.add(grip);
  return grip;
});

let needsRecenter = false;
let recenterHeld = false;
// Put the robot's base in front of and below the head, facing where the head looks, so the operator
// stands behind the arm and moves the hand the way the tool should move.
function recenterXR(headMatrix) {
  const head = new THREE.Matrix4().fromArray(headMatrix);
  const pos = new THREE.Vector3().setFromMatrixPosition(head);
  const dir = new THREE.Vector3(0, 0, -1).applyQuaternion(new THREE.Quaternion().setFromRotationMatrix(head));
  const yaw = Math.atan2(-dir.x, -dir.z);
  root.quaternion.setFromEuler(new THREE.Euler(0, yaw + Math.PI, 0)).multiply(
    new THREE.Quaternion().setFromEuler(new THREE.Euler(-Math.PI / 2, 0, 0)));
  const ahead = new THREE.Vector3(-Math.sin(yaw), 0, -Math.cos(yaw)).multiplyScalar(0.4);
  root.position.set(pos.x + ahead.x, Math.max(0.3, pos.y - 0.45), pos.z + ahead.z);
  root.updateMatrixWorld(true);
}
state.recenter = () => { if (state.inXR) needsRecenter = true; else recenterDesktop(); };
window.addEventListener('keydown', (e) => {
  dirty = true;
  if (e.code === 'Space') { state.recenter(); e.preventDefault(); }
  if (e.key === 'c') panelsVisible = !panelsVisible;
});

const toRoot = new THREE.Matrix4();
const tmp = { m: new THREE.Matrix4(), p: new THREE.Vector3(), q: new THREE.Quaternion(), s: new THREE.Vector3() };
function poseInRoot(matrixArray) {  // an XR pose -> the scene's world frame (ROS), as [x, y, z, qx, qy, qz, qw]
  tmp.m.fromArray(matrixArray).premultiply(toRoot).decompose(tmp.p, tmp.q, tmp.s);
  return [tmp.p.x, tmp.p.y, tmp.p.z, tmp.q.x, tmp.q.y, tmp.q.z, tmp.q.w];
}
let seq = 0;
function sendXRInput(frame) {
  const ref = renderer.xr.getReferenceSpace();
  const session = renderer.xr.getSession();
  toRoot.copy(root.matrixWorld).invert();
  const viewer = frame.getViewerPose(ref);
  let controller = null;
  let recenterPressed = false;
  const rightFirst = (s) => (s.handedness === 'right' ? 0 : 1);
  const sources = [...session.inputSources].sort((a, b) => rightFirst(a) - rightFirst(b));
  for (const src of sources) {
    if (!src.gripSpace || !src.gamepad) continue;
    const pose = frame.getPose(src.gripSpace, ref);
    if (!pose) continue;
    const b = src.gamepad.buttons;
    recenterPressed ||= Boolean(b[4] && b[4].pressed);
    if (!controller) {
      controller = { pose: poseInRoot(pose.transform.matrix), grip: b[1] ? b[1].value : 0, trigger: b[0] ? b[0].value : 0 };
    }
  }
  if (recenterPressed && !recenterHeld) needsRecenter = true;
  recenterHeld = recenterPressed;
  send({ type: 'input', seq: seq++, t: epochMs(), head: viewer ? poseInRoot(viewer.transform.matrix) : null, controller });
  state.inputsSent += 1;
}

// ---------------------------------------------------------------- HUD and loop
const hud = { conn: document.getElementById('conn'), role: document.getElementById('role'),
  age: document.getElementById('age'), latency: document.getElementById('latency'), fps: document.getElementById('fps') };
let fpsCount = 0; let fpsAt = performance.now();
function updateHud(now) {
  const age = state.lastPoseAt ? now - state.lastPoseAt : null;
  state.poseAgeMs = age;
  hud.conn.className = state.connected ? (age !== null && age < 200 ? 'ok' : 'warn') : 'bad';
  hud.role.textContent = !state.connected ? 'disconnected'
    : state.controller === state.id ? (state.engaged ? 'controlling (clutch held)' : 'controlling')
      : state.controller ? `watching (client ${state.controller} controls)` : 'watching';
  hud.age.textContent = age === null ? '–' : age.toFixed(0);
  const last = state.latencies[state.latencies.length - 1];
  // a headset's clock is not the server's: shift by the offset the pings measure (about 0 on one machine)
  hud.latency.textContent = last === undefined ? '–' : (last + state.clockOffset).toFixed(1);
  if (now - fpsAt > 1000) { hud.fps.textContent = (fpsCount * 1000 / (now - fpsAt)).toFixed(0); fpsCount = 0; fpsAt = now; }
}

// The same figures inside the headset: a small panel above the arm (HTML overlays do not show in VR).
const hudCanvas = Object.assign(document.createElement('canvas'), { width: 512, height: 96 });
const hudTexture = new THREE.CanvasTexture(hudCanvas);
const hudPanel = new THREE.Mesh(new THREE.PlaneGeometry(0.32, 0.06), new THREE.MeshBasicMaterial({ map: hudTexture, transparent: true }));
hudPanel.userData.anchor = new THREE.Vector3(0, -0.25, 0.58);
hudPanel.visible = false;
scene.add(hudPanel);
let hudDrawnAt = 0;
function drawXRHud(now, viewer) {
  hudPanel.visible = state.inXR;
  if (!state.inXR) return;
  hudPanel.position.copy(root.localToWorld(hudPanel.userData.anchor.clone()));
  hudPanel.lookAt(viewer);
  if (now - hudDrawnAt < 250) return;
  hudDrawnAt = now;
  const ctx = hudCanvas.getContext('2d');
  ctx.clearRect(0, 0, 512, 96);
  ctx.fillStyle = 'rgba(0,0,0,0.55)';
  ctx.fillRect(0, 0, 512, 96);
  ctx.fillStyle = '#fff';
  ctx.font = '28px sans-serif';
  ctx.fillText(hud.role.textContent, 12, 38);
  ctx.fillText(`pose age ${hud.age.textContent} ms · latency ${hud.latency.textContent} ms`, 12, 78);
  hudTexture.needsUpdate = true;
}

const viewerPos = new THREE.Vector3();
renderer.setAnimationLoop((time, frame) => {
  if (frame && state.inXR) {
    const viewer = frame.getViewerPose(renderer.xr.getReferenceSpace());
    if (needsRecenter && viewer) { recenterXR(viewer.transform.matrix); needsRecenter = false; }
    sendXRInput(frame);
    viewerPos.setFromMatrixPosition(renderer.xr.getCamera().matrixWorld);
  } else {
    const moving = controls.update();  // true while the orbit's damping still moves the camera
    if (!dirty && !moving) { updateHud(performance.now()); return; }
    dirty = false;
    viewerPos.copy(camera.position);
  }
  placePanels(viewerPos);
  drawXRHud(performance.now(), viewerPos);
  renderer.render(scene, camera);
  state.frames += 1; fpsCount += 1;
  updateHud(performance.now());
});

window.addEventListener('resize', () => {
  dirty = true;
  camera.aspect = window.innerWidth / window.innerHeight;
  camera.updateProjectionMatrix();
  renderer.setSize(window.innerWidth, window.innerHeight);
});

// For tests: the camera's matrices and the root's, to project scene points to pixels independently.
state.cameraState = () => {
  root.updateMatrixWorld(true);
  camera.updateMatrixWorld(true);
  return { view: camera.matrixWorldInverse.toArray(), projection: camera.projectionMatrix.toArray(),
    root: root.matrixWorld.toArray(), width: renderer.domElement.width, height: renderer.domElement.height };
};
state.ready = true;

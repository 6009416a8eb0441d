/* The landmarks the box found (a hand, a face, a body) drawn over the live view, in the browser.
 *
 * The status's look has points as fractions of the camera frame (x right, y down) and the
 * edges that join them.  The live <img> shows that frame with object-fit: contain in its box,
 * so the canvas lying over the whole box maps a point to the picture's displayed rectangle
 * (letterboxed: bands above and below a wide frame, or at the sides of a tall one).  Drawn
 * again when a status comes, when a frame of another size loads and when the box is resized;
 * cleared when the box finds nothing (look is null) or the camera shows nothing. */
import { $ } from './dom.js';
import { CAMERA } from './vocab.js';

const els = { live: $('live'), canvas: $('live-marks') };
const DOT_COLOUR = '#ffd400';  // on a dark outline: seen on skin, green cloth and white walls alike
const LINE_COLOUR = '#ffffff';
const OUTLINE = 'rgba(0, 0, 0, 0.75)';
const drawn = { look: null, shown: false };
// the size of the last frame shown: while the next one loads the image's natural size may read 0
const frame = { width: 0, height: 0 };

/** The rectangle (CSS pixels, in the canvas) where the live image's picture is shown. */
export function pictureRect(boxWidth, boxHeight, imageWidth, imageHeight) {
  const scale = Math.min(boxWidth / imageWidth, boxHeight / imageHeight);  // object-fit: contain
  const width = imageWidth * scale, height = imageHeight * scale;
  return { x: (boxWidth - width) / 2, y: (boxHeight - height) / 2, width, height };
}

/** The canvas's pixels follow its CSS size and the screen's pixel ratio (sharp on a phone). */
function fitCanvas() {
  const canvas = els.canvas;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(canvas.clientWidth * ratio), height = Math.round(canvas.clientHeight * ratio);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return ratio;
}

function draw() {
  const canvas = els.canvas;
  const ratio = fitCanvas();
  const ctx = canvas.getContext('2d');
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const look = drawn.shown ? drawn.look : null;
  const points = look && Array.isArray(look.points) && canvas.clientWidth && frame.width ? look.points : [];
  canvas.dataset.points = String(points.length);  // what is drawn now (for tests and tools)
  canvas.dataset.kind = points.length ? String(look.kind || '') : '';
  if (!points.length) { return; }
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);  // from here on in CSS pixels
  const rect = pictureRect(canvas.clientWidth, canvas.clientHeight, frame.width, frame.height);
  const at = (p) => [rect.x + Number(p[0]) * rect.width, rect.y + Number(p[1]) * rect.height];
  const many = points.length > 100;  // a face's 468 points: small dots, no lines
  const lineWidth = Math.max(1.5, rect.width / 220);
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  const edges = (Array.isArray(look.edges) ? look.edges : []).filter((e) => points[e[0]] && points[e[1]]);
  for (const [width, colour] of [[lineWidth + 2, OUTLINE], [lineWidth, LINE_COLOUR]]) {
    ctx.beginPath();
    for (const [a, b] of edges) {
      ctx.moveTo(...at(points[a]));
      ctx.lineTo(...at(points[b]));
    }
    ctx.lineWidth = width;
    ctx.strokeStyle = colour;
    ctx.stroke();
  }
  const radius = many ? Math.max(1, rect.width / 300) : Math.max(2.5, rect.width / 110);
  // every dot's dark rim first, then every dot: a close neighbour's rim never covers a dot
  for (const [r, colour] of many ? [[radius, DOT_COLOUR]] : [[radius + 1, OUTLINE], [radius, DOT_COLOUR]]) {
    ctx.beginPath();
    for (const p of points) {
      const [x, y] = at(p);
      ctx.moveTo(x + r, y);
      ctx.arc(x, y, r, 0, 2 * Math.PI);
    }
    ctx.fillStyle = colour;
    ctx.fill();
  }
}

/** Called with every status. */
export function renderLandmarks(s) {
  const cam = s.camera || {};
  const look = s.look || null;
  // a look is of the last frame; with the camera offline there is no frame under it
  const shown = !!look && cam.state !== CAMERA.OFFLINE && els.live.classList.contains('has-frame');
  if (look === drawn.look && shown === drawn.shown) { return; }
  drawn.look = look;
  drawn.shown = shown;
  draw();
}

export function initLandmarks() {
  els.live.addEventListener('load', () => {
    const { naturalWidth: width, naturalHeight: height } = els.live;
    if (width && (width !== frame.width || height !== frame.height)) {  // a frame of another size
      frame.width = width;
      frame.height = height;
      draw();
    }
  });
  if (window.ResizeObserver) {
    new ResizeObserver(() => draw()).observe(els.canvas);
  } else {
    window.addEventListener('resize', draw);
  }
}

/* The details card: speed, latency, model, runtime, camera, uptime, saving. */
import { $, setText, setHidden, formatDuration, isNumber } from './dom.js';
import { CAMERA } from './vocab.js';

const els = {
  fps: $('fps'), latency: $('latency'), model: $('model'), runtime: $('runtime'), camera: $('camera'),
  uptime: $('uptime'), savingRow: $('saving-row'), saving: $('saving')
};
const DASH = '\u2013';

function cameraText(cam) {
  let text = (cam.name || 'camera') + ': ' + (cam.state || '?');
  if (cam.source) { text += ', showing ' + cam.source; }
  if (isNumber(cam.frames)) { text += ', ' + cam.frames + ' frames'; }
  if (cam.error) { text += ' \u2014 ' + cam.error; }
  return text;
}

export function renderDetails(s) {
  setText(els.fps, isNumber(s.fps) ? s.fps.toFixed(1) : DASH);
  const lat = s.latency_ms || {};
  const parts = ['capture', 'preprocess', 'invoke', 'classify'].filter((k) => isNumber(lat[k]))
    .map((k) => k + ' ' + lat[k].toFixed(1));
  setText(els.latency, parts.length ? parts.join(' \u00b7 ') + ' ms' : DASH);
  setText(els.model, (s.model || DASH) + (s.dim ? ' (' + s.dim + '-d)' : ''));
  const runtime = [s.runtime, s.runtime_version].filter(Boolean).join(' ');
  setText(els.runtime, (runtime || DASH) + (s.threads ? ', ' + s.threads + ' thread' + (s.threads === 1 ? '' : 's') : ''));
  const cam = s.camera || {};
  setText(els.camera, cameraText(cam));
  els.camera.classList.toggle('bad', cam.state === CAMERA.OFFLINE);
  setText(els.uptime, formatDuration(s.uptime_s));
  const saving = s.saving || { ok: true };
  setHidden(els.savingRow, !!saving.ok);
  if (!saving.ok) { setText(els.saving, saving.error || 'failed'); }
}

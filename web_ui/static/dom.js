/* Small DOM and text helpers shared by the render modules. */

export const $ = (id) => document.getElementById(id);

export function setText(el, text) {
  const value = String(text);
  if (el && el.textContent !== value) { el.textContent = value; }
}

export function setHidden(el, hidden) {
  if (el && el.hidden !== hidden) { el.hidden = hidden; }
}

/** make('button', {className: 'btn', type: 'button'}, child, 'text', ...) */
export function make(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'attrs') {
      for (const [name, v] of Object.entries(value)) { el.setAttribute(name, v); }
    } else if (key === 'style') {
      for (const [name, v] of Object.entries(value)) { el.style.setProperty(name, v); }
    } else {
      el[key] = value;
    }
  }
  for (const child of children) {
    el.append(child);
  }
  return el;
}

const PALETTE = ['#0b57d0', '#b3261e', '#0a7d32', '#8a4b00', '#6f2da8', '#00696b', '#a0245f', '#4d5b00'];

export const colourOf = (i) => PALETTE[i % PALETTE.length];

export const clamp01 = (x) => Math.max(0, Math.min(1, Number(x) || 0));

export const pct = (x) => Math.round(clamp01(x) * 100) + '%';

export function examples(n) {
  const count = Number(n) || 0;
  return count + (count === 1 ? ' example' : ' examples');
}

export function capitalise(text) {
  const s = String(text);
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function formatDuration(seconds) {
  const s = Math.max(0, Math.floor(Number(seconds) || 0));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
  if (d) { return d + ' d ' + h + ' h'; }
  if (h) { return h + ' h ' + m + ' min'; }
  if (m) { return m + ' min ' + sec + ' s'; }
  return sec + ' s';
}

/** "42 s", "3 min", "2 h 5 min": for waits the user is told about (rounded up). */
export function waitText(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 120) { return s + ' s'; }
  if (s < 7200) { return Math.ceil(s / 60) + ' min'; }
  return formatDuration(s);
}

export const isNumber = (x) => typeof x === 'number' && Number.isFinite(x);

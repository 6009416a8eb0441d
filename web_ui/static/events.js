/* "Events": the newest starts and ends (of each answer and of each rule) and a small chart of
 * how often each answer started per hour (last 24 h) or per day (30 days), drawn as inline SVG
 * (no library).  Refreshed every 5 s while the page is visible. */
import { $, make, setHidden, colourOf } from './dom.js';
import { request } from './api.js';
import { ANSWER } from './vocab.js';

const els = { list: $('events-list'), none: $('events-none'), chart: $('events-chart'), legend: $('events-legend'),
  hour: $('events-hour'), day: $('events-day') };
const view = { bucket: 'hour', last: 0, loading: false };
const SVG = 'http://www.w3.org/2000/svg';
const WORDS = { [ANSWER.UNKNOWN]: 'something unknown', [ANSWER.ABSENT]: 'nothing in view' };

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) { el.setAttribute(name, value); }
  return el;
}

const clock = (unix) => new Date(unix * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** "10:42:05 ball started (rule ball light)". */
export function eventText(event) {
  const what = WORDS[event.answer] || event.answer;
  return clock(event.unix) + ' ' + what + (event.kind === 'start' ? ' started' : ' ended') +
    (event.rule ? ' (rule ' + event.rule + ')' : '');
}

function renderList(events) {
  els.list.replaceChildren(...events.slice(0, 20).map((event) => make('li', {
    className: 'event event-' + event.kind + (event.rule ? ' event-rule' : ''), textContent: eventText(event) })));
  setHidden(els.none, events.length > 0);
}

/** Stacked bars: a bar per hour (or day), a colour per answer; the newest on the right. */
export function drawChart(counts) {
  const answers = Object.keys(counts.answers).sort();
  const starts = counts.starts;
  const width = 320;
  const height = 120;
  const totals = starts.map((_, i) => answers.reduce((sum, a) => sum + counts.answers[a][i], 0));
  const most = Math.max(1, ...totals);
  const step = width / Math.max(1, starts.length);
  const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + (height + 16), class: 'chart', role: 'img',
    'aria-label': 'Starts per ' + counts.bucket + ': ' + answers.map((a) => a + ' ' +
      counts.answers[a].reduce((x, y) => x + y, 0)).join(', ') });
  chart.append(svg('line', { x1: 0, y1: height, x2: width, y2: height, class: 'chart-axis' }));
  starts.forEach((start, i) => {
    let top = height;
    answers.forEach((answer, k) => {
      const n = counts.answers[answer][i];
      if (!n) { return; }
      const h = (n / most) * (height - 4);
      top -= h;
      const bar = svg('rect', { x: (i * step + 1).toFixed(1), y: top.toFixed(1), width: Math.max(1, step - 2).toFixed(1),
        height: h.toFixed(1), fill: colourOf(k), class: 'chart-bar' });
      bar.append(svg('title', {}));
      bar.firstChild.textContent = answer + ': ' + n;
      chart.append(bar);
    });
  });
  const label = (i, anchor) => {
    const date = new Date(starts[i] * 1000);
    const text = svg('text', { x: anchor === 'end' ? width : 0, y: height + 13, 'text-anchor': anchor, class: 'chart-label' });
    text.textContent = counts.bucket === 'hour' ? date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
      : date.toLocaleDateString([], { day: 'numeric', month: 'short' });
    return text;
  };
  if (starts.length) { chart.append(label(0, 'start'), label(starts.length - 1, 'end')); }
  els.chart.replaceChildren(chart);
  els.legend.replaceChildren(...answers.map((answer, k) => make('li', { className: 'legend-item' },
    make('span', { className: 'legend-swatch', style: { background: colourOf(k) } }),
    make('span', { textContent: (WORDS[answer] || answer) + ' ' + counts.answers[answer].reduce((x, y) => x + y, 0) }))));
}

async function load() {
  view.loading = true;
  try {
    const offset = -new Date().getTimezoneOffset() * 60;
    const [events, counts] = await Promise.all([request('GET', '/api/events?limit=20'),
      request('GET', '/api/events/counts?bucket=' + view.bucket + '&offset=' + offset)]);
    renderList(events.events);
    drawChart(counts);
  } catch (error) {
    // the connection line says when the box is gone
  } finally {
    view.loading = false;
    view.last = Date.now();
  }
}

/** Called with every status: refresh every 5 s while visible. */
export function renderEvents() {
  if (!view.loading && !document.hidden && Date.now() - view.last > 5000) { load(); }
}

function choose(bucket) {
  view.bucket = bucket;
  els.hour.setAttribute('aria-pressed', String(bucket === 'hour'));
  els.day.setAttribute('aria-pressed', String(bucket === 'day'));
  view.last = 0;
  renderEvents();
}

export function initEvents() {
  els.hour.addEventListener('click', () => choose('hour'));
  els.day.addEventListener('click', () => choose('day'));
}

/* "Rules": when the box sees something, it does something.  The list says each rule in plain
 * words and marks the ones on now; an unlocked phone adds, edits and deletes them (the box checks
 * them as it checks the config file and answers with the same messages).  Rules set in the
 * config file are shown with the box's reason why they are changed there. */
import { $, make, setText, setHidden, pct } from './dom.js';
import { state } from './store.js';
import { request, post } from './api.js';
import { showBanner } from './banner.js';
import { ANSWER } from './vocab.js';

const els = {
  list: $('rules-list'), none: $('rules-none'), pinned: $('rules-pinned'), add: $('rule-add'),
  form: $('rule-form'), error: $('rule-error'), cancel: $('rule-cancel'), when: $('rule-when'),
  mode: $('rule-mode'), param: $('rule-param'), paramLabel: $('rule-param-label'), title: $('rule-form-title')
};
const view = { rules: [], active: [], pinned: null, loaded: false, editing: -1, loading: false, last: 0 };
const PARAM = { pulse: ['ms', 'Pulse (ms)', 500], servo: ['angle', 'Angle (−90 to 90)', 90], pwm: ['value', 'Level (0 to 1)', 0.5] };
const SPECIAL = { [ANSWER.UNKNOWN]: 'an unknown thing', [ANSWER.ABSENT]: 'nothing in view', nothing: 'nothing in view' };

function whenText(rule) {
  const when = rule.when;
  if (typeof when === 'number') { return 'class ' + (when + 1); }
  return SPECIAL[String(when).trim().toLowerCase()] || '\u201c' + when + '\u201d';
}

function actionText(action) {
  const pin = 'GPIO' + action.gpio;
  if (action.mode === 'on') { return pin + ' on' + (action.active_high === false ? ' (active low)' : ''); }
  if (action.mode === 'pulse') { return pin + ' pulse ' + (action.ms || 500) + ' ms'; }
  if (action.mode === 'servo') { return pin + ' servo to ' + action.angle + '\u00b0'; }
  return pin + ' at ' + pct(action.value);
}

/** "When “ball” ≥ 70% for 0.3 s → GPIO17 on; ends 1 s after": a rule in words. */
export function ruleText(rule) {
  const sure = rule.confidence !== undefined ? ' \u2265 ' + pct(rule.confidence) : '';
  const does = (rule.then || []).map(actionText);
  if (rule.sound) { does.push('play ' + rule.sound.split('/').pop()); }
  const ended = (rule.ended || []).map(actionText);
  return 'When ' + whenText(rule) + sure + ' for ' + rule.hold + ' s \u2192 ' + (does.join(', ') || 'an event') +
    '; ends ' + rule.until + ' s after' + (ended.length ? ' (then ' + ended.join(', ') + ')' : '') +
    (rule.cooldown ? '; at most every ' + rule.cooldown + ' s' : '');
}

async function load() {
  view.loading = true;
  try {
    const answer = await request('GET', '/api/rules');
    Object.assign(view, { rules: answer.rules, active: answer.active, pinned: answer.pinned, loaded: true });
  } catch (error) {
    // the connection line says when the box is gone
  } finally {
    view.loading = false;
    view.last = Date.now();
  }
  if (state.status) { renderRules(state.status); }
}

function renderList() {
  const items = view.rules.map((rule, index) => {
    const on = view.active.includes(rule.name);
    const item = make('li', { className: 'rule' + (on ? ' rule-on' : '') },
      make('p', { className: 'rule-name' }, make('strong', { textContent: rule.name }),
        on ? make('span', { className: 'rule-badge', textContent: 'on now' }) : ''),
      make('p', { className: 'rule-text', textContent: ruleText(rule) }));
    if (state.unlocked && !view.pinned) {
      const edit = make('button', { type: 'button', className: 'btn btn-small', textContent: 'Edit' });
      edit.addEventListener('click', () => openForm(index));
      const remove = make('button', { type: 'button', className: 'btn btn-small btn-danger', textContent: 'Delete' });
      remove.addEventListener('click', () => save(view.rules.filter((_, i) => i !== index), 'Rule deleted.'));
      item.append(make('div', { className: 'rule-buttons' }, edit, remove));
    }
    return item;
  });
  els.list.replaceChildren(...items);
  setHidden(els.none, view.rules.length > 0);
}

function fillWhen(s, current) {
  const options = (s.classes || []).map((c) => make('option', { value: c.name, textContent: c.name }));
  options.push(make('option', { value: ANSWER.UNKNOWN, textContent: 'unknown (not like anything taught)' }),
    make('option', { value: ANSWER.ABSENT, textContent: 'nothing in view (no hand, face, person)' }));
  els.when.replaceChildren(...options);
  const name = typeof current === 'number' ? ((s.classes || [])[current] || {}).name : current;
  if (name) { els.when.value = name; }
  if (!els.when.value) { els.when.selectedIndex = 0; }  // a new rule (or a class gone): the first class
}

function showParam() {
  const param = PARAM[els.mode.value];
  setHidden(els.paramLabel.parentElement, !param);
  if (param) { setText(els.paramLabel, param[1]); }
}

function openForm(index) {
  const rule = view.rules[index] || { name: '', when: '', confidence: 0.7, hold: 0.3, cooldown: 5, until: 1, then: [] };
  view.editing = index;
  const form = els.form.elements;
  fillWhen(state.status || {}, rule.when);
  form['rule-name'].value = rule.name;
  form['rule-confidence'].value = rule.confidence !== undefined ? rule.confidence : 0.7;
  form['rule-hold'].value = rule.hold;
  form['rule-cooldown'].value = rule.cooldown;
  form['rule-until'].value = rule.until;
  const action = (rule.then || [])[0];
  form['rule-gpio'].value = action ? action.gpio : 17;
  els.mode.value = action ? action.mode : 'none';
  els.param.value = action && PARAM[action.mode] ? action[PARAM[action.mode][0]] : '';
  showParam();
  setText(els.title, index >= 0 ? 'Change \u201c' + rule.name + '\u201d' : 'A new rule');
  setText(els.error, '');
  setHidden(els.form, false);
  form['rule-name'].focus();
}

function closeForm() {
  view.editing = -1;
  setHidden(els.form, true);
}

function fromForm() {
  const form = els.form.elements;
  const number = (id) => Number(form[id].value);
  const old = view.rules[view.editing] || {};
  const rule = { name: form['rule-name'].value.trim(), when: els.when.value, hold: number('rule-hold'),
    cooldown: number('rule-cooldown'), until: number('rule-until'), then: (old.then || []).slice(1), ended: old.ended || [] };
  if (![ANSWER.UNKNOWN, ANSWER.ABSENT, 'nothing'].includes(rule.when)) { rule.confidence = number('rule-confidence'); }
  if (old.sound) { rule.sound = old.sound; }
  if (els.mode.value !== 'none') {
    const action = { gpio: number('rule-gpio'), mode: els.mode.value };
    const param = PARAM[els.mode.value];
    if (param && els.param.value !== '') { action[param[0]] = Number(els.param.value); }
    rule.then.unshift(action);
  }
  return rule;
}

async function save(rules, done) {
  try {
    const answer = await post('/api/rules', { rules });
    Object.assign(view, { rules: answer.rules, active: answer.active, pinned: answer.pinned });
    closeForm();
    showBanner(done, 'info');
  } catch (error) {
    if (!els.form.hidden) {
      setText(els.error, error.message);  // the box's own words, naming the rule and key
    } else {
      showBanner(error.message);
    }
  }
  if (state.status) { renderRules(state.status); }
}

/** Called with every status. */
export function renderRules(s) {
  if (!view.loading && (!view.loaded || Date.now() - view.last > 5000)) { load(); }
  setHidden(els.pinned, !view.pinned);
  setText(els.pinned, view.pinned ? 'These rules are set in the config file (' + view.pinned + ').' : '');
  els.add.disabled = !state.unlocked || Boolean(view.pinned);
  setHidden(els.add, Boolean(view.pinned));
  if (!state.unlocked && !els.form.hidden) { closeForm(); }
  renderList();
}

export function initRules() {
  els.add.addEventListener('click', () => openForm(-1));
  els.cancel.addEventListener('click', closeForm);
  els.mode.addEventListener('change', showParam);
  els.form.addEventListener('submit', (event) => {
    event.preventDefault();
    const rule = fromForm();
    const rules = view.rules.slice();
    if (view.editing >= 0) { rules[view.editing] = rule; } else { rules.push(rule); }
    save(rules, view.editing >= 0 ? 'Rule changed.' : 'Rule added: it runs from now on.');
  });
}

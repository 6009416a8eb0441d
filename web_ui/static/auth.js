/* Locking and unlocking: pairing with a button on the box, the PIN, Lock, and the notice every
 * page shows while some browser asks to unlock. */
import { $, make, setText, setHidden, waitText, formatDuration, isNumber, capitalise } from './dom.js';
import { state, update } from './store.js';
import { request, post, exclusive, pollSoon } from './api.js';
import { releaseAll } from './hold.js';
import { showBanner, reportError } from './banner.js';
import { PAIR } from './vocab.js';

const PAIR_POLL_MS = 1000;
const PIN_FORM = /^[0-9]{6,12}$/;  // the box refuses shorter PINs in its configuration

const els = {
  title: $('lock-title'), lockedBox: $('locked-box'), unlockedBox: $('unlocked-box'), pairBox: $('pair-box'),
  unlockPair: $('unlock-pair'), pairWait: $('pair-wait'), pairPending: $('pair-pending'),
  pairPendingText: $('pair-pending-text'), pairCancel: $('pair-cancel'), pinForm: $('pin-form'), pin: $('pin'),
  pinSubmit: $('pin-submit'), pinWait: $('pin-wait'), noUnlock: $('no-unlock'), lock: $('lock'),
  unlockLeft: $('unlock-left'), alert: $('pair-alert')
};
let pairTimer = null;
let resumeChecked = false;  // the first status was looked at for this page's own pending request

const secondsLeft = (until) => Math.max(0, (until - Date.now()) / 1000);

// -- rendering ---------------------------------------------------------------------------
function renderPending(auth) {
  const mine = state.pairing;
  setHidden(els.pairPending, !mine);
  setHidden(els.unlockPair, !!mine);
  if (!mine) { return; }
  const code = isNumber(mine.code) ? mine.code : (auth.pair && auth.pair.mine ? auth.pair.code : null);
  if (isNumber(code)) {
    const key = 'code:' + code;
    if (els.pairPendingText.dataset.key !== key) {
      els.pairPendingText.replaceChildren('Hold Function and press button ',
        make('strong', { className: 'pair-code', textContent: String(code) }),
        ' on the box', make('span', { className: 'pair-sub', textContent: 'Its lamp blinks.' }));
      els.pairPendingText.dataset.key = key;
    }
  } else {
    setText(els.pairPendingText, mine.message || 'Press the button on the box\u2026');
    els.pairPendingText.dataset.key = '';
  }
}

function renderWaits(auth) {
  const pairLeft = secondsLeft(state.waits.pairUntil);
  setHidden(els.pairWait, !pairLeft);
  if (pairLeft) { setText(els.pairWait, state.waits.pairText + ' Try again in ' + waitText(pairLeft) + '.'); }
  els.unlockPair.disabled = !!pairLeft;
  const pinLeft = Math.max(secondsLeft(state.waits.pinUntil), Number(auth.pin_retry_in) || 0);
  setHidden(els.pinWait, !pinLeft);
  if (pinLeft) { setText(els.pinWait, 'Too many wrong PINs: the next try is allowed in ' + waitText(pinLeft) + '.'); }
  els.pinSubmit.disabled = !!pinLeft;
}

function renderUnlockLeft(auth) {
  const left = auth.expires_in;
  setHidden(els.unlockLeft, !(state.unlocked && isNumber(left)));
  if (state.unlocked && isNumber(left)) {
    setText(els.unlockLeft, 'Unlocked for ' + formatDuration(left) + ' more' +
      (isNumber(auth.unlock_hours) ? ' (an unlock lasts ' + auth.unlock_hours + ' h).' : '.'));
  }
}

/** Every page, locked or not, says when some other browser asks to unlock (and which lamp blinks). */
function renderAlert(auth) {
  const pair = auth.pair;
  const show = !!(pair && !pair.mine && isNumber(pair.code));
  setHidden(els.alert, !show);
  if (show) {
    const key = String(pair.code);
    if (els.alert.dataset.key !== key) {
      els.alert.replaceChildren('A browser is asking to unlock: button ',
        make('strong', { className: 'pair-code-small', textContent: key }),
        ' blinks. Only approve it (Function + that button) if that is you.');
      els.alert.dataset.key = key;
    }
  }
}

export function renderLock(s) {
  const auth = s.auth || {};
  const unlocked = state.unlocked;
  const open = auth.required === false;  // this box lets every browser change things
  setHidden(els.lockedBox, unlocked);
  setHidden(els.unlockedBox, !unlocked || open);
  setHidden(els.pairBox, !auth.pairing);
  setHidden(els.pinForm, !auth.pin);
  setHidden(els.noUnlock, !!(auth.pairing || auth.pin));
  setText(els.title, unlocked ? 'Unlocked' : 'Locked');
  if (unlocked && state.pairing) { stopPairing(); }
  resumePairing(auth, unlocked);
  renderPending(auth);
  renderWaits(auth);
  renderUnlockLeft(auth);
  renderAlert(auth);
  if (state.expectLocked) {
    state.expectLocked = false;
    if (unlocked) {
      showBanner('This box does not ask for unlocking ([web] require_unlock is off), so it stays unlocked.', 'info');
    }
  }
}

// -- pairing ------------------------------------------------------------------------------
/** A page reloaded (or opened again) while its own request waits: show it and keep asking.
 * Only from the first status: later ones may still name a request this page just ended. */
function resumePairing(auth, unlocked) {
  if (resumeChecked) { return; }
  resumeChecked = true;
  const pair = auth.pair;
  if (unlocked || state.pairing || !pair || !pair.mine) { return; }
  state.pairing = { code: isNumber(pair.code) ? pair.code : null, message: '' };
  pairTimer = setTimeout(checkPairing, PAIR_POLL_MS);
}

function stopPairing() {
  clearTimeout(pairTimer);
  pairTimer = null;
  update({ pairing: null });
}

async function checkPairing() {
  if (!state.pairing) { return; }
  let result;
  try {
    result = await exclusive(() => request('GET', '/api/unlock/pair'));
  } catch (error) {
    if (state.pairing) { pairTimer = setTimeout(checkPairing, PAIR_POLL_MS); }  // keep trying through hiccups
    return;
  }
  if (!state.pairing) { return; }
  if (result.state === PAIR.APPROVED) {
    stopPairing();
    showBanner('Paired: this phone can now teach and change the box.', 'info');
    pollSoon();
  } else if (result.state === PAIR.PENDING) {
    if (isNumber(result.code) && result.code !== state.pairing.code) {
      update({ pairing: { ...state.pairing, code: result.code } });
    }
    pairTimer = setTimeout(checkPairing, PAIR_POLL_MS);
  } else {
    stopPairing();
    showBanner('The pairing request ended before the button on the box was pressed. Try again.', 'error');
  }
}

function refusedPairing(error) {
  const data = error.data || {};
  if (error.status === 409 || error.status === 429) {
    state.waits.pairUntil = Date.now() + (Number(data.retry_in) || 5) * 1000;
    state.waits.pairText = error.status === 409 && isNumber(data.code)
      ? 'Another browser is asking to unlock right now (button ' + data.code + ' blinks on the box).'
      : 'The box asks this browser to wait.';
    pollSoon();
  }
  reportError(error);
}

async function startPairing() {
  if (state.pairing) { return; }
  els.unlockPair.disabled = true;
  try {
    const result = await exclusive(() => post('/api/unlock/pair', {}));
    update({ pairing: { code: isNumber(result.code) ? result.code : null, message: result.message ? capitalise(result.message) : '' } });
    pairTimer = setTimeout(checkPairing, PAIR_POLL_MS);
  } catch (error) {
    refusedPairing(error);
  } finally {
    els.unlockPair.disabled = false;
  }
}

async function cancelPairing() {
  stopPairing();
  try {
    await post('/api/unlock/pair/cancel', {});
  } catch (error) {
    if (error.status !== 404 && error.status !== 405) { reportError(error); }  // an older box has no cancel
  }
}

// -- PIN and Lock -----------------------------------------------------------------------------
async function submitPin(event) {
  event.preventDefault();
  const pin = els.pin.value.trim();
  if (!PIN_FORM.test(pin)) {
    showBanner(pin ? 'The PIN has 6 to 12 digits (0\u20139), nothing else.' : 'Enter the PIN first.', 'error');
    els.pin.focus();
    return;
  }
  els.pinSubmit.disabled = true;
  try {
    await exclusive(() => post('/api/unlock/pin', { pin }));
    els.pin.value = '';
    els.pin.blur();
    showBanner('Unlocked: this phone can now teach and change the box.', 'info');
  } catch (error) {
    const wait = Number((error.data || {}).retry_in) || (error.status === 429 ? 60 : 0);
    if (wait > 0) { state.waits.pinUntil = Date.now() + wait * 1000; }  // a wrong PIN may already cost a wait
    els.pin.select();
    reportError(error);
  } finally {
    els.pinSubmit.disabled = secondsLeft(state.waits.pinUntil) > 0;  // a wait just begun keeps it off
  }
}

async function lock() {
  try {
    await exclusive(() => post('/api/lock', {}));
    releaseAll();
    state.expectLocked = true;
  } catch (error) {
    reportError(error);
  }
}

export function initAuth() {
  els.unlockPair.addEventListener('click', startPairing);
  els.pairCancel.addEventListener('click', cancelPairing);
  els.pinForm.addEventListener('submit', submitPin);
  els.lock.addEventListener('click', lock);
}

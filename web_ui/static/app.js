/* teachbox phone page: polls /api/status, refreshes the live view, sends actions.
 * Plain ES2017, no build step, no external resources. */
(function () {
  'use strict';

  var POLL_MS = 300;          // status polls (skipped while one is still running)
  var FRAME_MS = 250;         // live view refreshes (next one only after the last loaded/failed)
  var FRAME_RETRY_MS = 1000;  // after a failed frame
  var PAIR_POLL_MS = 1000;
  var REQUEST_TIMEOUT_MS = 8000;
  var INFO_HIDE_MS = 6000;
  var PALETTE = ['#0b57d0', '#b3261e', '#0a7d32', '#8a4b00', '#6f2da8', '#00696b', '#a0245f', '#4d5b00'];

  var $ = function (id) { return document.getElementById(id); };

  var els = {
    body: document.body,
    banner: $('banner'), bannerText: $('banner-text'), bannerClose: $('banner-close'),
    conn: $('conn'),
    answerCard: $('answer-card'), answer: $('answer'), confidence: $('confidence'), answerHint: $('answer-hint'),
    teachingNow: $('teaching-now'), savingWarning: $('saving-warning'),
    live: $('live'), liveOverlay: $('live-overlay'), liveOverlayTitle: $('live-overlay-title'),
    liveOverlayText: $('live-overlay-text'),
    sourceRow: $('source-row'), source: $('source'),
    classes: $('classes'),
    undo: $('undo'), clearAll: $('clear-all'), exportLink: $('export'), importInput: $('import'),
    importLabel: $('import-label'),
    lockedBox: $('locked-box'), unlockedBox: $('unlocked-box'), pairBox: $('pair-box'),
    unlockPair: $('unlock-pair'), pairPending: $('pair-pending'), pairCancel: $('pair-cancel'),
    pinForm: $('pin-form'), pin: $('pin'), pinSubmit: $('pin-submit'), noUnlock: $('no-unlock'), lock: $('lock'),
    panel: $('panel'), panelLeds: $('panel-leds'), panelButtons: $('panel-buttons'),
    fps: $('fps'), latency: $('latency'), model: $('model'), runtime: $('runtime'), camera: $('camera'),
    uptime: $('uptime'), savingRow: $('saving-row'), saving: $('saving')
  };

  var status = null;          // the last /api/status answer
  var csrf = '';
  var unlocked = false;
  var pollBusy = null;        // the running status request (a promise), if any
  var pollAgain = false;
  var failures = 0;
  var classesKey = '';        // number of classes the cards were built for
  var panelKey = '';
  var pairTimer = null;
  var pairing = false;
  var expectLockedAfterLock = false;

  // ---------------------------------------------------------------------------
  // messages
  var bannerTimer = null;

  function showBanner(message, kind) {
    clearTimeout(bannerTimer);
    els.bannerText.textContent = capitalise(message);
    els.banner.className = 'banner ' + (kind === 'info' ? 'banner-info' : 'banner-error');
    els.banner.hidden = false;
    if (kind === 'info') {
      bannerTimer = setTimeout(hideBanner, INFO_HIDE_MS);
    }
  }

  function hideBanner() {
    clearTimeout(bannerTimer);
    els.banner.hidden = true;
  }

  els.bannerClose.addEventListener('click', hideBanner);
  document.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && !els.banner.hidden && !(event.target && event.target.classList &&
        event.target.classList.contains('name-input'))) {
      hideBanner();
    }
  });

  // ---------------------------------------------------------------------------
  // HTTP
  function withTimeout(ms) {
    if (typeof AbortController === 'undefined') {
      return { signal: undefined, done: function () {} };
    }
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, ms);
    return { signal: controller.signal, done: function () { clearTimeout(timer); } };
  }

  function readError(response) {
    return response.text().then(function (text) {
      var message = '';
      try {
        var data = JSON.parse(text);
        message = data && data.error ? String(data.error) : '';
      } catch (e) {
        message = '';
      }
      if (!message) {
        message = 'The box answered ' + response.status + (response.statusText ? ' ' + response.statusText : '');
      }
      var error = new Error(message);
      error.status = response.status;
      return error;
    });
  }

  function request(method, url, body, contentType) {
    var timeout = withTimeout(REQUEST_TIMEOUT_MS);
    var headers = { 'Accept': 'application/json' };
    if (method !== 'GET') {
      headers['X-Teachbox-CSRF'] = csrf;
      headers['Content-Type'] = contentType || 'application/json';
    }
    return fetch(url, {
      method: method,
      headers: headers,
      body: body,
      credentials: 'same-origin',
      cache: 'no-store',
      signal: timeout.signal
    }).then(function (response) {
      timeout.done();
      if (!response.ok) {
        return readError(response).then(function (error) { throw error; });
      }
      return response.json().catch(function () { return {}; });
    }, function (error) {
      timeout.done();
      var wrapped = new Error(error && error.name === 'AbortError'
        ? 'The box did not answer in time.' : 'Cannot reach the box (' + (error && error.message || 'network error') + ').');
      wrapped.status = 0;
      throw wrapped;
    });
  }

  /** POST JSON; on a stale CSRF token fetch a fresh one (from /api/status) and try once more. */
  function post(url, data, options) {
    options = options || {};
    var body = options.raw !== undefined ? options.raw : JSON.stringify(data === undefined ? {} : data);
    var type = options.raw !== undefined ? 'application/octet-stream' : 'application/json';
    var send = function () { return request('POST', url, body, type); };
    var first = csrf ? send() : poll(true).then(send);
    return first.catch(function (error) {
      if (error.status === 403 && /csrf/i.test(error.message) && !options.retried) {
        options.retried = true;
        return poll(true).then(send);
      }
      throw error;
    }).then(function (result) {
      pollSoon();
      return result;
    }, function (error) {
      pollSoon();
      throw error;
    });
  }

  function reportError(error) {
    showBanner(error && error.message ? error.message : String(error), 'error');
  }

  /** Run promise-returning functions one after another (keeps press/release in order). */
  function makeQueue() {
    var tail = Promise.resolve();
    return function (fn) {
      var next = tail.then(fn, fn);
      tail = next.catch(function () {});
      return next;
    };
  }

  var teachQueue = makeQueue();
  var simQueue = makeQueue();

  /* The session lives in a signed cookie that every response sets again (status, frames, ...).
   * A response that started before an unlock finished would put back the old, locked cookie, so
   * requests that change the session run alone: polls and frames pause until they are done. */
  var quiet = 0;

  function exclusive(fn) {
    quiet += 1;
    var started = Date.now();
    function idle() {
      return new Promise(function (resolve) {
        (function check() {
          if ((!pollBusy && !frameLoading) || Date.now() - started > 3000) {
            resolve();
          } else {
            setTimeout(check, 15);
          }
        }());
      });
    }
    function done() {
      quiet -= 1;
      if (!quiet) {
        pollSoon();
        scheduleFrame(0);
      }
    }
    return idle().then(fn).then(function (result) {
      done();
      return result;
    }, function (error) {
      done();
      throw error;
    });
  }

  // ---------------------------------------------------------------------------
  // status polling
  function poll(force) {
    if (quiet && !force) {
      return Promise.resolve(status);
    }
    if (pollBusy) {
      if (force) {
        pollAgain = true;
      }
      return pollBusy;
    }
    pollBusy = request('GET', '/api/status').then(function (data) {
      pollBusy = null;
      failures = 0;
      status = data;
      if (data.auth && data.auth.csrf) {
        csrf = data.auth.csrf;
      }
      try {
        render(data);
      } catch (e) {
        if (window.console) { console.error(e); }
      }
      if (pollAgain) {
        pollAgain = false;
        setTimeout(function () { poll(false); }, 0);
      }
      return data;
    }, function (error) {
      pollBusy = null;
      failures += 1;
      renderConnection(error);
      return status;
    });
    return pollBusy;
  }

  function pollSoon() {
    if (pollBusy) {
      pollAgain = true;
    } else {
      setTimeout(function () { poll(false); }, 0);
    }
  }

  function startPolling() {
    poll(false);
    setInterval(function () {
      if (document.hidden) {
        return;
      }
      poll(false);  // skipped inside poll() while the previous one is still running
    }, POLL_MS);
  }

  function renderConnection(error) {
    if (failures >= 2 || !status) {
      els.body.classList.add('stale');
      els.conn.textContent = 'Lost contact with the box; retrying\u2026' +
        (error && error.status ? ' (' + error.message + ')' : '');
      els.conn.className = 'conn conn-bad';
    }
  }

  // ---------------------------------------------------------------------------
  // rendering
  function pct(x) {
    var n = Math.round(Math.max(0, Math.min(1, Number(x) || 0)) * 100);
    return n + '%';
  }

  function colourOf(i) {
    return PALETTE[i % PALETTE.length];
  }

  function formatDuration(s) {
    s = Math.max(0, Math.floor(Number(s) || 0));
    var d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), sec = s % 60;
    if (d) { return d + ' d ' + h + ' h'; }
    if (h) { return h + ' h ' + m + ' min'; }
    if (m) { return m + ' min ' + sec + ' s'; }
    return sec + ' s';
  }

  function setText(el, text) {
    text = String(text);
    if (el.textContent !== text) {
      el.textContent = text;
    }
  }

  function setHidden(el, hidden) {
    if (el.hidden !== hidden) {
      el.hidden = hidden;
    }
  }

  function render(s) {
    els.body.classList.remove('loading');
    els.body.classList.remove('stale');
    setText(els.conn, s.simulated ? 'Simulated box' : 'Connected');
    els.conn.className = 'conn conn-ok';

    unlocked = !!(s.auth && s.auth.unlocked);
    els.body.classList.toggle('locked', !unlocked);
    els.body.classList.toggle('unlocked', unlocked);

    renderAnswer(s);
    renderLive(s);
    renderClasses(s);
    renderActions(s);
    renderLock(s);
    renderPanel(s);
    renderDetails(s);
  }

  function renderAnswer(s) {
    var cam = s.camera || {};
    var state;
    var answer, hint = '', confidence = '';
    if (cam.state === 'offline') {
      state = 'offline';
      answer = 'Camera offline';
      hint = cam.error ? String(cam.error) : 'the box cannot see anything right now';
    } else if (cam.state === 'starting' && !cam.frames) {
      state = 'starting';
      answer = 'Camera starting\u2026';
    } else if (s.state === 'ok') {
      state = 'ok';
      answer = s.answer;
      confidence = pct(s.confidence) + ' sure';
    } else if (s.state === 'nothing-learned') {
      state = 'nothing-learned';
      answer = 'Nothing learned yet';
      hint = 'hold a class button to teach';
    } else {
      state = 'unknown';
      answer = 'Unknown';
      hint = 'not like anything it was taught';
    }
    if (els.answerCard.getAttribute('data-state') !== state) {
      els.answerCard.setAttribute('data-state', state);
      els.answer.setAttribute('data-state', state);
    }
    if (state === 'ok' && s.answer_id !== null && s.answer_id !== undefined) {
      els.answerCard.style.setProperty('--accent', colourOf(s.answer_id));
    } else {
      els.answerCard.style.removeProperty('--accent');
    }
    setText(els.answer, answer);
    setText(els.confidence, confidence);
    setHidden(els.confidence, !confidence);
    setText(els.answerHint, hint);
    setHidden(els.answerHint, !hint);

    var teaching = s.teaching;
    if (teaching !== null && teaching !== undefined && s.classes && s.classes[teaching]) {
      setText(els.teachingNow, 'Teaching \u201c' + s.classes[teaching].name + '\u201d\u2026');
      setHidden(els.teachingNow, false);
    } else {
      setHidden(els.teachingNow, true);
    }

    var saving = s.saving || { ok: true };
    if (!saving.ok) {
      setText(els.savingWarning, 'Not saved: ' + (saving.error || 'saving failed') +
        '. What it learns now may be lost when the box restarts.');
      setHidden(els.savingWarning, false);
    } else {
      setHidden(els.savingWarning, true);
    }
  }

  function renderLive(s) {
    var cam = s.camera || {};
    var offline = cam.state === 'offline';
    var starting = cam.state === 'starting' && !cam.frames;
    if (offline) {
      setText(els.liveOverlayTitle, 'Camera offline');
      setText(els.liveOverlayText, cam.error || '');
    } else if (starting) {
      setText(els.liveOverlayTitle, 'Camera starting\u2026');
      setText(els.liveOverlayText, '');
    }
    setHidden(els.liveOverlay, !(offline || starting));
    els.liveOverlay.classList.toggle('overlay-offline', offline);

    var sources = cam.sources || [];
    setHidden(els.sourceRow, sources.length === 0);
    if (sources.length) {
      var key = sources.join('\u0000');
      if (els.source.getAttribute('data-key') !== key) {
        els.source.textContent = '';
        sources.forEach(function (name) {
          var option = document.createElement('option');
          option.value = name;
          option.textContent = name;
          els.source.appendChild(option);
        });
        els.source.setAttribute('data-key', key);
      }
      if (document.activeElement !== els.source && !els.source.disabled && cam.source !== null &&
          cam.source !== undefined && els.source.value !== cam.source) {
        els.source.value = cam.source;
      }
    }
  }

  // -- class cards --------------------------------------------------------------
  function buildClasses(classes) {
    els.classes.textContent = '';
    classes.forEach(function (c, i) {
      var li = document.createElement('li');
      li.className = 'class-card';
      li.setAttribute('data-class', String(i));
      li.style.setProperty('--accent', colourOf(i));

      var head = document.createElement('div');
      head.className = 'class-head';

      var number = document.createElement('span');
      number.className = 'class-number';
      number.textContent = String(i + 1);
      number.setAttribute('aria-hidden', 'true');

      var name = document.createElement('button');
      name.type = 'button';
      name.className = 'name';
      name.title = 'Tap to rename';
      name.addEventListener('click', function () { startRename(i); });

      var seeing = document.createElement('span');
      seeing.className = 'seeing';
      seeing.textContent = 'sees this';

      head.appendChild(number);
      head.appendChild(name);
      head.appendChild(seeing);

      var meta = document.createElement('div');
      meta.className = 'class-meta';
      var count = document.createElement('span');
      count.className = 'count';
      var conf = document.createElement('span');
      conf.className = 'class-confidence';
      meta.appendChild(count);
      meta.appendChild(conf);

      var track = document.createElement('div');
      track.className = 'bar-track';
      track.setAttribute('role', 'meter');
      track.setAttribute('aria-valuemin', '0');
      track.setAttribute('aria-valuemax', '100');
      var bar = document.createElement('div');
      bar.className = 'bar';
      track.appendChild(bar);

      var buttons = document.createElement('div');
      buttons.className = 'class-buttons';
      var teach = document.createElement('button');
      teach.type = 'button';
      teach.className = 'btn teach';
      teach.textContent = 'Hold to teach';
      teach.disabled = true;
      var clear = document.createElement('button');
      clear.type = 'button';
      clear.className = 'btn clear';
      clear.textContent = 'Clear';
      clear.disabled = true;
      clear.addEventListener('click', function () { clearClass(i); });
      buttons.appendChild(teach);
      buttons.appendChild(clear);

      holdable(teach, {
        press: function () { return teachQueue(function () { return post('/api/teach/start', { 'class': i }); }); },
        keepAlive: function () { return post('/api/teach/start', { 'class': i, keep: true }); },
        release: function () { return teachQueue(function () { return post('/api/teach/stop', { 'class': i }); }); },
        enabled: function () { return unlocked; },
        onChange: function (held) {
          setText(teach, held ? 'Teaching\u2026' : 'Hold to teach');
        }
      });

      li.appendChild(head);
      li.appendChild(meta);
      li.appendChild(track);
      li.appendChild(buttons);
      els.classes.appendChild(li);
    });
  }

  function renderClasses(s) {
    var classes = s.classes || [];
    var key = String(classes.length);
    if (key !== classesKey) {
      buildClasses(classes);
      classesKey = key;
    }
    var cards = els.classes.children;
    classes.forEach(function (c, i) {
      var card = cards[i];
      if (!card) { return; }
      var answered = s.state === 'ok' && s.answer_id === i && (s.camera || {}).state !== 'offline';
      card.classList.toggle('answered', answered);
      card.classList.toggle('teaching', s.teaching === i);
      card.classList.toggle('empty', !c.examples);
      var nameEl = card.querySelector('.name');
      if (nameEl && !card.classList.contains('renaming')) {
        setText(nameEl, c.name);
        nameEl.disabled = !unlocked;
        nameEl.setAttribute('aria-label', c.name + (unlocked ? ' (tap to rename)' : ''));
      }
      var n = Number(c.examples) || 0;
      setText(card.querySelector('.count'), examples(n));
      var confidence = Math.max(0, Math.min(1, Number(c.confidence) || 0));
      var bar = card.querySelector('.bar');
      var width = (confidence * 100).toFixed(1) + '%';
      if (bar.style.width !== width) {
        bar.style.width = width;
      }
      var track = card.querySelector('.bar-track');
      track.setAttribute('aria-valuenow', String(Math.round(confidence * 100)));
      track.setAttribute('aria-label', 'Confidence for ' + c.name + ': ' + pct(confidence));
      setText(card.querySelector('.class-confidence'), n ? pct(confidence) : '');
      var teach = card.querySelector('.teach');
      teach.disabled = !unlocked;
      if (!teach.classList.contains('held')) {
        setText(teach, s.teaching === i ? 'Teaching\u2026' : 'Hold to teach');
      }
      teach.setAttribute('aria-label', 'Hold to teach ' + c.name);
      var clear = card.querySelector('.clear');
      clear.disabled = !unlocked || !n;
      clear.setAttribute('aria-label', 'Clear ' + c.name);
    });
  }

  function className(i) {
    return status && status.classes && status.classes[i] ? status.classes[i].name : 'class ' + (i + 1);
  }

  function clearClass(i) {
    if (!unlocked) { return; }
    var c = status.classes[i] || {};
    var n = Number(c.examples) || 0;
    if (!window.confirm('Forget ' + (n === 1 ? 'the 1 example' : 'all ' + n + ' examples') + ' of \u201c' + className(i) + '\u201d?')) {
      return;
    }
    post('/api/clear', { 'class': i }).then(function (result) {
      showBanner('Cleared \u201c' + className(i) + '\u201d (' + examples(result.forgotten) + ' forgotten).', 'info');
    }, reportError);
  }

  function startRename(i) {
    if (!unlocked) { return; }
    var card = els.classes.querySelector('.class-card[data-class="' + i + '"]');
    if (!card || card.classList.contains('renaming')) { return; }
    var nameEl = card.querySelector('.name');
    var old = className(i);
    var input = document.createElement('input');
    input.type = 'text';
    input.className = 'name-input';
    input.maxLength = 32;
    input.value = old;
    input.setAttribute('aria-label', 'New name for class ' + (i + 1));
    input.setAttribute('enterkeyhint', 'done');
    input.autocomplete = 'off';
    card.classList.add('renaming');
    nameEl.hidden = true;
    nameEl.parentNode.insertBefore(input, nameEl.nextSibling);
    input.focus();
    input.select();

    var finished = false;
    function finish(save) {
      if (finished) { return; }
      finished = true;
      var value = input.value.trim();
      input.remove();
      nameEl.hidden = false;
      card.classList.remove('renaming');
      if (!save || value === old) {
        nameEl.focus();
        return;
      }
      setText(nameEl, value);  // shown at once; the next status confirms (or the banner explains)
      post('/api/rename', { 'class': i, 'name': value }).then(function () {
        nameEl.focus();
      }, function (error) {
        setText(nameEl, old);
        reportError(error);
      });
    }
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter') {
        event.preventDefault();
        finish(true);
      } else if (event.key === 'Escape') {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener('blur', function () { finish(true); });
  }

  // -- press and hold -----------------------------------------------------------
  /** Make `button` send press() when pressed and release() when let go (pointer, touch or keyboard). */
  function holdable(button, handlers) {
    var pointerId = null;
    var keyDown = false;
    var down = false;

    var renewal = null;

    function press() {
      if (down || !handlers.enabled()) { return; }
      down = true;
      if (handlers.keepAlive) {  // the box stops a hold it stops hearing about
        renewal = setInterval(function () { handlers.keepAlive().catch(function () {}); }, 1000);
      }
      button.classList.add('held');
      button.setAttribute('aria-pressed', 'true');
      if (handlers.onChange) { handlers.onChange(true); }
      handlers.press().catch(function (error) {
        reportError(error);
      });
    }

    function release() {
      if (!down) { return; }
      down = false;
      if (renewal !== null) { clearInterval(renewal); renewal = null; }
      pointerId = null;
      keyDown = false;
      button.classList.remove('held');
      button.setAttribute('aria-pressed', 'false');
      if (handlers.onChange) { handlers.onChange(false); }
      handlers.release().catch(reportError);
    }

    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('pointerdown', function (event) {
      if (event.pointerType === 'mouse' && event.button !== 0) { return; }
      event.preventDefault();  // no text selection, no focus-scroll jumps
      if (down || !handlers.enabled()) { return; }  // no text selection, no focus-scroll jumps
      pointerId = event.pointerId;
      try { button.setPointerCapture(event.pointerId); } catch (e) { /* not supported */ }
      button.focus({ preventScroll: true });
      press();
    });
    var end = function (event) {
      if (pointerId !== null && event.pointerId !== pointerId) { return; }
      if (pointerId === null && !down) { return; }
      if (keyDown) { return; }  // a keyboard press is released by its key
      release();
    };
    button.addEventListener('pointerup', end);
    button.addEventListener('pointercancel', end);
    button.addEventListener('pointerleave', end);
    button.addEventListener('lostpointercapture', end);
    button.addEventListener('contextmenu', function (event) { event.preventDefault(); });
    button.addEventListener('selectstart', function (event) { event.preventDefault(); });
    button.addEventListener('dragstart', function (event) { event.preventDefault(); });
    button.addEventListener('keydown', function (event) {
      if (event.key !== ' ' && event.key !== 'Enter' && event.key !== 'Spacebar') { return; }
      event.preventDefault();
      if (event.repeat || down) { return; }
      keyDown = true;
      press();
      if (!down) { keyDown = false; }
    });
    button.addEventListener('keyup', function (event) {
      if (event.key !== ' ' && event.key !== 'Enter' && event.key !== 'Spacebar') { return; }
      event.preventDefault();
      if (keyDown) {
        keyDown = false;
        release();
      }
    });
    button.addEventListener('blur', function () { if (down && pointerId === null) { release(); } });
    button.addEventListener('click', function (event) { event.preventDefault(); });
    holders.push(release);
  }

  var holders = [];

  function releaseAll() {
    holders.forEach(function (release) { release(); });
  }

  window.addEventListener('blur', releaseAll);
  window.addEventListener('pagehide', releaseAll);
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      releaseAll();
    } else {
      poll(false);
      scheduleFrame(0);
    }
  });

  // -- actions --------------------------------------------------------------------
  function renderActions() {
    els.undo.disabled = !unlocked;
    els.clearAll.disabled = !unlocked;
    els.importInput.disabled = !unlocked;
    els.importLabel.classList.toggle('disabled', !unlocked);
    els.importLabel.setAttribute('aria-disabled', unlocked ? 'false' : 'true');
    els.exportLink.setAttribute('aria-disabled', unlocked ? 'false' : 'true');
    els.exportLink.classList.toggle('disabled', !unlocked);
    if (unlocked) {
      els.exportLink.removeAttribute('tabindex');
    } else {
      els.exportLink.setAttribute('tabindex', '-1');
    }
  }

  els.undo.addEventListener('click', function () {
    post('/api/undo', {}).then(function (result) {
      if (!result.undone) {
        showBanner(result.message ? capitalise(result.message) + '.' : 'Nothing to undo.', 'info');
      } else {
        showBanner('Undone: ' + examples(result.undone.examples) + ' of \u201c' +
          className(result.undone['class']) + '\u201d.', 'info');
      }
    }, reportError);
  });

  els.clearAll.addEventListener('click', function () {
    if (!window.confirm('Forget everything the box has learned, in every class? This cannot be undone. ' +
        '(Export first if you want to keep it.)')) {
      return;
    }
    post('/api/clear-all', { confirm: true }).then(function (result) {
      showBanner('Cleared everything (' + examples(result.forgotten) + ' forgotten).', 'info');
    }, reportError);
  });

  els.exportLink.addEventListener('click', function (event) {
    if (!unlocked) {
      event.preventDefault();
      showBanner('Locked: unlock this phone to export.', 'error');
    }
  });

  els.importInput.addEventListener('change', function () {
    var file = els.importInput.files && els.importInput.files[0];
    if (!file) { return; }
    if (!window.confirm('Import \u201c' + file.name + '\u201d? It replaces everything the box has learned.')) {
      els.importInput.value = '';
      return;
    }
    els.importLabel.classList.add('busy');
    post('/api/import', null, { raw: file }).then(function (result) {
      var list = (result.classes || []).filter(function (c) { return c.examples; }).map(function (c) {
        return c.name + ' (' + c.examples + ')';
      });
      showBanner('Imported \u201c' + file.name + '\u201d' + (list.length ? ': ' + list.join(', ') : ' (no examples in it)') + '.', 'info');
    }, reportError).then(function () {
      els.importLabel.classList.remove('busy');
      els.importInput.value = '';
    });
  });

  function examples(n) {
    n = Number(n) || 0;
    return n + (n === 1 ? ' example' : ' examples');
  }

  function capitalise(text) {
    text = String(text);
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // -- unlocking ----------------------------------------------------------------------
  function renderLock(s) {
    var auth = s.auth || {};
    var open = auth.required === false;  // this box lets every browser change things
    setHidden(els.lockedBox, unlocked);
    setHidden(els.unlockedBox, !unlocked || open);
    setHidden(els.pairBox, !auth.pairing);
    setHidden(els.pinForm, !auth.pin);
    setHidden(els.noUnlock, !!(auth.pairing || auth.pin));
    setText(document.getElementById('lock-title'), unlocked ? 'Unlocked' : 'Locked');
    if (unlocked && pairing) {
      stopPairing();
    }
    if (expectLockedAfterLock) {
      expectLockedAfterLock = false;
      if (unlocked) {
        showBanner('This box does not ask for unlocking ([web] require_unlock is off), so it stays unlocked.', 'info');
      }
    }
  }

  function stopPairing() {
    pairing = false;
    clearTimeout(pairTimer);
    pairTimer = null;
    els.pairPending.hidden = true;
    els.unlockPair.hidden = false;
    els.unlockPair.disabled = false;
  }

  function checkPairing() {
    if (!pairing) { return; }
    exclusive(function () { return request('GET', '/api/unlock/pair'); }).then(function (result) {
      if (!pairing) { return; }
      if (result.state === 'approved') {
        stopPairing();
        showBanner('Paired: this phone can now teach and change the box.', 'info');
        pollSoon();
      } else if (result.state === 'pending') {
        pairTimer = setTimeout(checkPairing, PAIR_POLL_MS);
      } else {
        stopPairing();
        showBanner('The pairing request expired before the function button was pressed. Try again.', 'error');
      }
    }, function () {
      if (pairing) { pairTimer = setTimeout(checkPairing, PAIR_POLL_MS); }  // keep trying through hiccups
    });
  }

  els.unlockPair.addEventListener('click', function () {
    if (pairing) { return; }
    els.unlockPair.disabled = true;
    exclusive(function () { return post('/api/unlock/pair', {}); }).then(function () {
      pairing = true;
      els.unlockPair.hidden = true;
      els.pairPending.hidden = false;
      pairTimer = setTimeout(checkPairing, PAIR_POLL_MS);
    }, function (error) {
      els.unlockPair.disabled = false;
      reportError(error);
    });
  });

  els.pairCancel.addEventListener('click', stopPairing);

  els.pinForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var pin = els.pin.value.trim();
    if (!pin) {
      showBanner('Enter the PIN first.', 'error');
      els.pin.focus();
      return;
    }
    els.pinSubmit.disabled = true;
    exclusive(function () { return post('/api/unlock/pin', { pin: pin }); }).then(function () {
      els.pin.value = '';
      els.pin.blur();
      showBanner('Unlocked: this phone can now teach and change the box.', 'info');
    }, function (error) {
      els.pin.select();
      reportError(error);
    }).then(function () {
      els.pinSubmit.disabled = false;
    });
  });

  els.lock.addEventListener('click', function () {
    exclusive(function () { return post('/api/lock', {}); }).then(function () {
      releaseAll();
      expectLockedAfterLock = true;
    }, reportError);
  });

  // -- simulated front panel ---------------------------------------------------------------
  function buildPanel(p, classes) {
    els.panelLeds.textContent = '';
    els.panelButtons.textContent = '';
    for (var i = 0; i < p.leds.length; i += 1) {
      var wrap = document.createElement('div');
      wrap.className = 'lamp';
      var led = document.createElement('span');
      led.className = 'led';
      led.setAttribute('data-led', String(i));
      led.setAttribute('role', 'img');
      led.style.setProperty('--accent', colourOf(i));
      var label = document.createElement('span');
      label.className = 'lamp-label';
      label.textContent = String(i + 1);
      wrap.appendChild(led);
      wrap.appendChild(label);
      els.panelLeds.appendChild(wrap);
    }
    if (p.status_led !== null && p.status_led !== undefined) {
      var swrap = document.createElement('div');
      swrap.className = 'lamp';
      var sled = document.createElement('span');
      sled.className = 'status-lamp';
      sled.setAttribute('role', 'img');
      var slabel = document.createElement('span');
      slabel.className = 'lamp-label';
      slabel.textContent = 'Status';
      swrap.appendChild(sled);
      swrap.appendChild(slabel);
      els.panelLeds.appendChild(swrap);
    }
    for (var b = 0; b < p.buttons.length; b += 1) {
      els.panelButtons.appendChild(simButton(b, String(b + 1)));
    }
    els.panelButtons.appendChild(simButton('function', 'Function'));
  }

  function simButton(which, text) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'btn sim-button' + (which === 'function' ? ' sim-function' : '');
    button.setAttribute('data-button', String(which));
    var big = document.createElement('span');
    big.className = 'sim-text';
    big.textContent = text;
    button.appendChild(big);
    if (which !== 'function') {
      var small = document.createElement('span');
      small.className = 'sim-name';
      button.appendChild(small);
      button.style.setProperty('--accent', colourOf(which));
    }
    var send = function (pressed) {
      return simQueue(function () { return post('/api/sim/button', { button: which, pressed: pressed }); });
    };
    holdable(button, {
      press: function () { return send(true); },
      release: function () { return send(false); },
      enabled: function () { return true; }
    });
    return button;
  }

  function renderPanel(s) {
    var p = s.panel;
    var show = !!(s.simulated && p);
    setHidden(els.panel, !show);
    if (!show) { return; }
    var classes = s.classes || [];
    var key = p.leds.length + '/' + p.buttons.length + '/' + (p.status_led === null || p.status_led === undefined ? 0 : 1);
    if (key !== panelKey) {
      buildPanel(p, classes);
      panelKey = key;
    }
    p.leds.forEach(function (value, i) {
      var led = els.panelLeds.querySelector('.led[data-led="' + i + '"]');
      if (!led) { return; }
      var level = Math.max(0, Math.min(1, Number(value) || 0));
      var text = level.toFixed(2);
      if (led.getAttribute('data-level') !== text) {
        led.setAttribute('data-level', text);
        led.style.setProperty('--level', text);
      }
      var name = classes[i] ? classes[i].name : 'class ' + (i + 1);
      led.setAttribute('aria-label', 'Lamp ' + (i + 1) + ' (' + name + '): ' + (level > 0.02 ? pct(level) : 'off'));
      led.classList.toggle('lit', level > 0.02);
    });
    var slamp = els.panelLeds.querySelector('.status-lamp');
    if (slamp && p.status_led !== null && p.status_led !== undefined) {
      var sl = Math.max(0, Math.min(1, Number(p.status_led) || 0)).toFixed(2);
      slamp.setAttribute('data-level', sl);
      slamp.style.setProperty('--level', sl);
      slamp.setAttribute('aria-label', 'Status lamp: ' + (Number(sl) > 0.02 ? pct(sl) : 'off'));
    }
    var buttons = els.panelButtons.querySelectorAll('.sim-button');
    Array.prototype.forEach.call(buttons, function (button) {
      var which = button.getAttribute('data-button');
      var pressed = which === 'function' ? !!p['function'] : !!p.buttons[Number(which)];
      button.classList.toggle('pressed', pressed);
      if (which !== 'function') {
        var i = Number(which);
        var name = classes[i] ? classes[i].name : '';
        setText(button.querySelector('.sim-name'), name);
        button.setAttribute('aria-label', 'Panel button ' + (i + 1) + (name ? ' (' + name + ')' : ''));
      } else {
        button.setAttribute('aria-label', 'Panel function button');
      }
    });
  }

  // -- camera source ------------------------------------------------------------------------
  els.source.addEventListener('change', function () {
    var chosen = els.source.value;
    els.source.disabled = true;
    post('/api/sim/source', { source: chosen }).then(function () {
      els.source.disabled = false;
    }, function (error) {
      els.source.disabled = false;
      reportError(error);
    });
  });

  // -- details ------------------------------------------------------------------------------
  function renderDetails(s) {
    setText(els.fps, typeof s.fps === 'number' ? s.fps.toFixed(1) : '\u2013');
    var lat = s.latency_ms || {};
    var parts = ['capture', 'preprocess', 'invoke', 'classify'].filter(function (k) {
      return typeof lat[k] === 'number';
    }).map(function (k) { return k + ' ' + lat[k].toFixed(1); });
    setText(els.latency, parts.length ? parts.join(' \u00b7 ') + ' ms' : '\u2013');
    setText(els.model, (s.model || '\u2013') + (s.dim ? ' (' + s.dim + '-d)' : ''));
    var runtime = [s.runtime, s.runtime_version].filter(Boolean).join(' ');
    setText(els.runtime, (runtime || '\u2013') + (s.threads ? ', ' + s.threads + ' thread' + (s.threads === 1 ? '' : 's') : ''));
    var cam = s.camera || {};
    var camText = (cam.name || 'camera') + ': ' + (cam.state || '?');
    if (cam.source) { camText += ', showing ' + cam.source; }
    if (typeof cam.frames === 'number') { camText += ', ' + cam.frames + ' frames'; }
    if (cam.error) { camText += ' \u2014 ' + cam.error; }
    setText(els.camera, camText);
    els.camera.classList.toggle('bad', cam.state === 'offline');
    setText(els.uptime, formatDuration(s.uptime_s));
    var saving = s.saving || { ok: true };
    setHidden(els.savingRow, !!saving.ok);
    if (!saving.ok) {
      setText(els.saving, saving.error || 'failed');
    }
  }

  // ---------------------------------------------------------------------------
  // live view
  var frameCounter = 0;
  var frameTimer = null;
  var frameLoading = false;
  var frameStarted = 0;

  function loadFrame() {
    frameTimer = null;
    if (frameLoading || document.hidden) { return; }
    if (quiet) {
      scheduleFrame(FRAME_MS);
      return;
    }
    frameLoading = true;
    frameStarted = Date.now();
    frameCounter += 1;
    els.live.src = '/api/frame.jpg?n=' + frameCounter;
  }

  function scheduleFrame(delay) {
    if (frameTimer !== null || frameLoading) { return; }
    frameTimer = setTimeout(loadFrame, Math.max(0, delay));
  }

  els.live.addEventListener('load', function () {
    frameLoading = false;
    els.live.classList.add('has-frame');
    scheduleFrame(FRAME_MS - (Date.now() - frameStarted));
  });
  els.live.addEventListener('error', function () {
    frameLoading = false;
    scheduleFrame(FRAME_RETRY_MS);
  });
  // keep the live view from being dragged or long-pressed into a save-image menu mid-teach
  els.live.addEventListener('dragstart', function (event) { event.preventDefault(); });

  // ---------------------------------------------------------------------------
  startPolling();
  scheduleFrame(0);
}());

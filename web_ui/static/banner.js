/* The message banner at the bottom of the screen (over the page, never moving it). */
import { $, capitalise } from './dom.js';

const INFO_HIDE_MS = 6000;
const els = { banner: $('banner'), text: $('banner-text'), close: $('banner-close') };
let timer = null;

export function showBanner(message, kind = 'error') {
  clearTimeout(timer);
  els.text.textContent = capitalise(message);
  els.banner.className = 'banner ' + (kind === 'info' ? 'banner-info' : 'banner-error');
  els.banner.hidden = false;
  if (kind === 'info') { timer = setTimeout(hideBanner, INFO_HIDE_MS); }
}

export function hideBanner() {
  clearTimeout(timer);
  els.banner.hidden = true;
}

export function reportError(error) {
  showBanner(error && error.message ? error.message : String(error), 'error');
}

export function initBanner() {
  els.close.addEventListener('click', hideBanner);
  document.addEventListener('keydown', (event) => {
    const inEditor = event.target && event.target.classList && event.target.classList.contains('name-input');
    if (event.key === 'Escape' && !els.banner.hidden && !inEditor) { hideBanner(); }
  });
}

/* dom.js - building the page from data, as text only.
 * Every server value enters the page through text nodes or attribute values
 * set here; nothing here (or anywhere in these pages) assigns innerHTML. */
'use strict';
(function (R) {
  /* el('button', {class: 'btn', onclick: f, 'data-testid': 'accept'}, 'text', child) */
  function el(tag, attrs, ...kids) {
    const svg = tag.startsWith('svg:');
    const n = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
                  : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') n.addEventListener(k.slice(2), v);
      else if (k === 'text') n.textContent = String(v);
      else n.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of kids.flat()) {
      if (c === null || c === undefined || c === false) continue;
      n.appendChild(typeof c === 'string' || typeof c === 'number'
        ? document.createTextNode(String(c)) : c);
    }
    return n;
  }
  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); return n; }
  function replace(n, ...kids) {
    clear(n);
    for (const k of kids.flat()) if (k !== null && k !== undefined && k !== false)
      n.appendChild(typeof k === 'string' ? document.createTextNode(k) : k);
    return n;
  }
  function main() { return document.getElementById('main'); }
  /* A short message for screen readers and eyes. */
  function say(msg, kind) {
    const s = document.getElementById('status');
    s.className = 'status' + (kind ? ' status-' + kind : '');
    s.textContent = msg || '';
  }
  R.dom = { el, clear, replace, main, say };
})(window.RFD = window.RFD || {});

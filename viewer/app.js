// app.js - what every viewer page shares: API calls with the session
// cookie and the CSRF token, element building, formatting, dialogs.

export const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || '';

export class ApiError extends Error {
	constructor(status, message) { super(message); this.status = status; }
}

// Calls the /v1 API; returns the parsed JSON (or the Response when raw).
export async function api(path, { method = 'GET', json, body, headers = {}, raw = false } = {}) {
	const h = { ...headers };
	if (method !== 'GET') h['X-CSRF-Token'] = csrf();
	if (json !== undefined) { h['Content-Type'] = 'application/json'; body = JSON.stringify(json); }
	const r = await fetch(path, { method, headers: h, body, credentials: 'same-origin' });
	if (r.status === 401) { toLogin(); throw new ApiError(401, 'Your session has ended: log in again.'); }
	if (raw) return r;
	const text = await r.text();
	let doc = null;
	try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
	if (!r.ok) throw new ApiError(r.status, (doc && (doc.message || doc.error)) || `${r.status} ${r.statusText}`);
	return doc;
}

export function toLogin() {
	location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
}

// h('a', {href: '/'}, 'text', child...): an element; attributes starting
// with "on" become listeners, false/null ones are left out.
export function h(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs || {})) {
		if (v === false || v === null || v === undefined) continue;
		if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
		else if (k === 'class') e.className = v;
		else e.setAttribute(k, v === true ? '' : v);
	}
	for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) e.append(c);
	return e;
}

export const $ = (sel, root = document) => root.querySelector(sel);

export function fmtBytes(n) {
	if (n === null || n === undefined) return '';
	const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
	let i = 0, v = Number(n);
	while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
	return i ? `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}` : `${v} B`;
}

export const fmtCount = (n) => (n === null || n === undefined ? '' : Number(n).toLocaleString('en-US'));

// An RFC 3339 time as "2026-12-04 23:10:05.123456 UTC" (exact, sortable);
// one with a zero offset reads the same.
export function fmtTime(t) {
	if (!t) return '—';
	const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]00:?00)$/.exec(t);
	return m ? `${m[1]} ${m[2]}${m[3] ? m[3].slice(0, 7) : ''} UTC` : t;
}

// A datetime-local value (taken as UTC, as the page says) as RFC 3339.
export function localToRfc3339(v) {
	if (!v) return '';
	return (v.length === 16 ? v + ':00' : v) + 'Z';
}
export function rfc3339ToLocal(v) {
	const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?)/.exec(v || '');
	return m ? m[1] : '';
}

export function setStatus(el, text, kind = '') {
	el.textContent = text;
	el.className = 'status' + (kind ? ' ' + kind : '');
}

// A modal question; resolves true when confirmed. Escape or Cancel: false.
export function confirmDialog({ title, message, confirm = 'OK', danger = false }) {
	return new Promise((resolve) => {
		const ok = h('button', { type: 'submit', value: 'yes', class: danger ? 'danger' : '' }, confirm);
		const cancel = h('button', { type: 'submit', value: 'no', class: 'secondary' }, 'Cancel');
		const d = h('dialog', { 'aria-labelledby': 'dlg-title' },
			h('form', { method: 'dialog' },
				h('h2', { id: 'dlg-title' }, title),
				h('p', {}, message),
				h('menu', {}, cancel, ok)));
		d.addEventListener('close', () => { resolve(d.returnValue === 'yes'); d.remove(); });
		document.body.append(d);
		d.showModal();
		cancel.focus();
	});
}

// Query-string helpers for pages that keep their state in the URL.
export const params = () => new URLSearchParams(location.search);
export function setParams(p) {
	const q = p.toString();
	history.replaceState(null, '', location.pathname + (q ? '?' + q : ''));
}

export function tagList(tags) {
	return (tags || []).map((t) => h('span', { class: 'tag' }, t));
}

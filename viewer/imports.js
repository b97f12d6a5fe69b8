// imports.js - /imports: the watched folders and recent failures, as
// GET /v1/imports reports them.
import { api, h, $, fmtBytes, fmtCount, fmtTime, setStatus } from './app.js';

const empty = (cols, text) => h('tr', {}, h('td', { colspan: cols, class: 'empty' }, text));

function fill(id, items, cols, none, fn) {
	$(id).replaceChildren(...(items || []).map(fn));
	if (!(items || []).length) $(id).append(empty(cols, none));
}

try {
	const d = await api('/v1/imports');
	fill('#folders', d.folders, 7, 'No import folder is configured.', (f) => h('tr', {},
		h('td', { class: 'mono' }, f.path), h('td', {}, f.watch || ''), h('td', {}, f.after_import || ''),
		h('td', { class: 'num' }, fmtCount(f.imported)), h('td', { class: 'num' }, fmtCount(f.duplicates)),
		h('td', { class: 'num' }, fmtCount(f.failed)), h('td', { class: 'num' }, fmtBytes(f.bytes))));
	fill('#failures', d.recent_failures || d.failures, 3, 'No recent failure.', (f) => h('tr', {},
		h('td', { class: 'time' }, fmtTime(f.time)), h('td', { class: 'mono' }, f.path), h('td', {}, f.error)));
	fill('#retrying', d.retrying, 3, 'Nothing waits for a retry.', (f) => h('tr', {},
		h('td', { class: 'mono' }, f.path), h('td', { class: 'num' }, String(f.attempts)), h('td', {}, f.error)));
} catch (e) {
	setStatus($('#status'), e.message, 'error');
}

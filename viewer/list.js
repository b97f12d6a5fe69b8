// list.js - the capture list: search by name, tags and packet times,
// sorted and paged by GET /v1/captures (its cursor; the page keeps the
// cursors it came through so Previous works).
import { api, h, $, fmtBytes, fmtCount, fmtTime, localToRfc3339, rfc3339ToLocal, params, setParams, setStatus, tagList } from './app.js';

const form = $('#search');
const body = $('#captures tbody');
const status = $('#status');
let cursors = [null]; // cursors[i]: the cursor of page i
let page = 0;
let nextCursor = null;

function nameGlob(v) {
	v = v.trim();
	return !v || /[*?[]/.test(v) ? v : `*${v}*`;
}

function query(cursor) {
	const f = new FormData(form);
	const q = new URLSearchParams();
	const name = nameGlob(f.get('name') || '');
	if (name) q.set('name', name);
	for (const t of String(f.get('tags') || '').split(',').map((s) => s.trim()).filter(Boolean)) q.append('tag', t);
	if (f.get('from')) q.set('from', localToRfc3339(f.get('from')));
	if (f.get('to')) q.set('to', localToRfc3339(f.get('to')));
	q.set('sort', f.get('sort') || '-id');
	q.set('limit', f.get('limit') || '50');
	if (cursor) q.set('cursor', cursor);
	return q;
}

function row(c) {
	return h('tr', {},
		h('td', { class: 'name' }, h('a', { href: `/captures/${c.id}` }, c.name || `capture ${c.id}`)),
		h('td', { class: 'num', 'data-label': 'Size' }, fmtBytes(c.file_size)),
		h('td', { class: 'num', 'data-label': 'Packets' }, fmtCount(c.packets)),
		h('td', { class: 'time', 'data-label': 'First packet' }, fmtTime(c.earliest_packet_time)),
		h('td', { class: 'time', 'data-label': 'Last packet' }, fmtTime(c.latest_packet_time)),
		h('td', { 'data-label': 'Tags' }, (c.tags || []).length ? tagList(c.tags) : '—'));
}

async function load() {
	setStatus(status, 'Loading…');
	try {
		const doc = await api('/v1/captures?' + query(cursors[page]));
		body.replaceChildren(...doc.captures.map(row));
		if (!doc.captures.length)
			body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, page ? 'No more captures.' : 'No capture matches.')));
		nextCursor = doc.next_cursor;
		$('#prev').disabled = page === 0;
		$('#next').disabled = !nextCursor;
		const n = doc.captures.length;
		$('#pageinfo').textContent = `Page ${page + 1}`;
		setStatus(status, n ? `Showing ${n} capture${n === 1 ? '' : 's'}${nextCursor ? ' (more on the next page)' : ''}.` : '');
	} catch (e) {
		setStatus(status, e.message, 'error');
	}
}

function saveState() {
	const f = new FormData(form), p = new URLSearchParams();
	for (const k of ['name', 'tags', 'from', 'to', 'sort', 'limit']) if (f.get(k)) p.set(k, f.get(k));
	setParams(p);
}

function restoreState() {
	const p = params();
	for (const k of ['name', 'tags', 'from', 'to', 'sort', 'limit'])
		if (p.get(k)) form.elements[k].value = k === 'from' || k === 'to' ? rfc3339ToLocal(p.get(k)) || p.get(k) : p.get(k);
}

form.addEventListener('submit', (e) => { e.preventDefault(); cursors = [null]; page = 0; saveState(); load(); });
form.addEventListener('reset', () => setTimeout(() => { cursors = [null]; page = 0; saveState(); load(); }));
$('#next').addEventListener('click', () => { if (!nextCursor) return; cursors[++page] = nextCursor; load(); });
$('#prev').addEventListener('click', () => { if (page > 0) { page--; load(); } });
restoreState();
const deleted = params().get('deleted');
await load();
if (deleted) {
	setStatus(status, `Deleted “${deleted}”.`, 'ok');
	const p = params();
	p.delete('deleted');
	setParams(p);
}

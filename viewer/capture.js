// capture.js - /captures/<id>: what `capvault info` knows, tags and
// comment (PATCH), annotations, download, and delete with a confirmation.
import { api, h, $, fmtBytes, fmtCount, fmtTime, setStatus, tagList, confirmDialog } from './app.js';

const id = decodeURIComponent(location.pathname.split('/')[2] || '');
const status = $('#status');
let rec = null;

function fact(dl, label, value) {
	dl.append(h('dt', {}, label), h('dd', {}, value === null || value === undefined || value === '' ? '—' : value));
}

function plain(v) {
	if (v === null || v === undefined) return '—';
	if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') || '—';
	if (typeof v === 'object') return JSON.stringify(v);
	return String(v);
}

function show(c) {
	rec = c;
	document.title = `${c.name || 'Capture ' + c.id} · capvault`;
	$('#title').textContent = c.name || `Capture ${c.id}`;
	const dl = $('#summary');
	dl.replaceChildren();
	fact(dl, 'ID', String(c.id));
	fact(dl, 'Size', `${fmtBytes(c.file_size)} (${fmtCount(c.file_size)} bytes)`);
	fact(dl, 'Packets', fmtCount(c.packets));
	fact(dl, 'First packet', fmtTime(c.earliest_packet_time));
	fact(dl, 'Last packet', fmtTime(c.latest_packet_time));
	fact(dl, 'Duration', c.duration_s !== undefined ? `${Number(c.duration_s).toFixed(3)} s` : '');
	fact(dl, 'Format', [c.format, c.compression && c.compression !== 'none' ? c.compression : ''].filter(Boolean).join(', '));
	fact(dl, 'Link types', (c.linktypes || []).map((l) => (l.description ? `${l.description} (${l.name})` : l.name || String(l.linktype))).join(', '));
	fact(dl, 'Imported', fmtTime(c.import_time));
	fact(dl, 'Tags', (c.tags || []).length ? tagList(c.tags) : '');
	fact(dl, 'SHA-256', h('code', {}, c.sha256 || ''));
	const edit = $('#edit');
	edit.elements.tags.value = (c.tags || []).join(', ');
	edit.elements.comment.value = c.comment || '';
	const fields = $('#fields');
	fields.replaceChildren(...Object.keys(c).sort().map((k) =>
		h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'mono' }, plain(c[k])))));
	$('#download').href = `/v1/captures/${c.id}/file`;
	$('#download-ann').href = `/v1/captures/${c.id}/file?annotations=1`;
	$('#packets').href = `/packets?capture=${c.id}`;
	for (const s of ['#actions', '#cards', '#all']) $(s).hidden = false;
}

async function loadAnnotations() {
	const tb = $('#annotations');
	try {
		const doc = await api(`/v1/captures/${encodeURIComponent(id)}/annotations`);
		const list = doc.annotations || [];
		tb.replaceChildren(...list.map((a) => h('tr', {},
			h('td', { class: 'num' }, String(a.frame)), h('td', {}, a.text), h('td', { class: 'time' }, fmtTime(a.created_at)))));
		if (!list.length) tb.append(h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No annotations yet.')));
	} catch (e) {
		tb.replaceChildren(h('tr', {}, h('td', { colspan: 3, class: 'empty' }, `Annotations unavailable: ${e.message}`)));
	}
}

async function load() {
	setStatus(status, 'Loading…');
	try {
		show(await api(`/v1/captures/${encodeURIComponent(id)}`));
		setStatus(status, '');
		loadAnnotations();
	} catch (e) {
		setStatus(status, e.status === 404 ? 'There is no such capture (it may have been deleted).' : e.message, 'error');
	}
}

$('#edit').addEventListener('submit', async (e) => {
	e.preventDefault();
	const f = e.target.elements, st = $('#edit-status');
	const tags = f.tags.value.split(',').map((s) => s.trim()).filter(Boolean);
	setStatus(st, 'Saving…');
	try {
		show(await api(`/v1/captures/${rec.id}`, { method: 'PATCH', json: { tags, comment: f.comment.value || null } }));
		setStatus(st, 'Saved.', 'ok');
	} catch (err) {
		setStatus(st, err.message, 'error');
	}
});

$('#annotate').addEventListener('submit', async (e) => {
	e.preventDefault();
	const f = e.target.elements, st = $('#ann-status');
	try {
		await api(`/v1/captures/${rec.id}/annotations`, { method: 'POST', json: { frame: Number(f.frame.value), text: f.text.value } });
		f.text.value = '';
		setStatus(st, 'Annotation added.', 'ok');
		loadAnnotations();
	} catch (err) {
		setStatus(st, err.message, 'error');
	}
});

$('#delete').addEventListener('click', async () => {
	const yes = await confirmDialog({
		title: 'Delete this capture?',
		message: `“${rec.name || rec.id}” (${fmtCount(rec.packets)} packets, ${fmtBytes(rec.file_size)}) will be removed from the vault. This cannot be undone.`,
		confirm: 'Delete', danger: true,
	});
	if (!yes) { $('#delete').focus(); return; }
	try {
		await api(`/v1/captures/${rec.id}`, { method: 'DELETE' });
		location.assign('/?deleted=' + encodeURIComponent(rec.name || rec.id));
	} catch (err) {
		setStatus(status, err.message, 'error');
	}
});

load();

// packets.js - /packets: a BPF filter and a time window (across the
// store or inside one capture) as a paged list of decoded packets
// (GET /v1/decode/list), the decode tree of the selected one
// (GET /v1/decode/packet), and the selection as pcap (GET /v1/packets).
import { api, h, $, fmtTime, localToRfc3339, rfc3339ToLocal, params, setParams, setStatus } from './app.js';

const form = $('#query');
const rows = $('#packet-rows');
const status = $('#status');
let cursor = null;
let shown = 0;
let selected = null;

function criteria() {
	const f = new FormData(form), q = new URLSearchParams();
	if (f.get('filter')) q.set('filter', f.get('filter'));
	if (f.get('after')) q.set('after', localToRfc3339(f.get('after')));
	if (f.get('before')) q.set('before', localToRfc3339(f.get('before')));
	if (String(f.get('capture') || '').trim()) q.set('capture', String(f.get('capture')).trim());
	return q;
}

function updateDownload(q) {
	const d = new URLSearchParams(q);
	if (d.get('capture')) { d.set('captures', d.get('capture')); d.delete('capture'); }
	$('#download').href = '/v1/packets?' + d;
}

// The list shows the time of day (the full time is the cell's title and
// the detail pane's first line).
function timeOfDay(t) {
	const m = /T(\d\d:\d\d:\d\d(\.\d{1,6})?)/.exec(t || '');
	return m ? m[1] : fmtTime(t);
}

function row(p, n) {
	const tr = h('tr', { tabindex: '-1', 'data-ref': p.ref, 'aria-selected': 'false' },
		h('td', { class: 'num' }, String(p.frame ?? n)),
		h('td', { class: 'time', title: fmtTime(p.time) }, timeOfDay(p.time)),
		h('td', {}, p.source || ''),
		h('td', {}, p.destination || ''),
		h('td', {}, p.protocol || ''),
		h('td', { class: 'num' }, String(p.length ?? '')),
		h('td', { class: 'info', title: p.info || '' }, p.info || ''));
	tr.addEventListener('click', () => {
		select(tr);
		// On a phone the detail pane is below the list: bring it into view.
		if (matchMedia('(max-width: 800px)').matches) $('.detail').scrollIntoView({ behavior: 'smooth' });
	});
	return tr;
}

async function fetchPage(reset) {
	const q = criteria();
	if (reset) { cursor = null; shown = 0; rows.replaceChildren(); clearDetail(); }
	if (cursor) q.set('cursor', cursor);
	q.set('limit', '100');
	setStatus(status, 'Decoding…');
	try {
		const doc = await api('/v1/decode/list?' + q);
		const list = doc.packets || [];
		rows.append(...list.map((p) => row(p, ++shown)));
		cursor = doc.next;
		$('#more').hidden = !cursor;
		$('#decoder').textContent = doc.decoder ? `Decoded by ${doc.decoder}` : '';
		if (!shown) rows.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No packet matches.')));
		setStatus(status, shown ? `${shown} packet${shown === 1 ? '' : 's'} shown${cursor ? '; more are available' : ''}.` : '');
		if (reset && shown) rows.firstElementChild.tabIndex = 0;
	} catch (e) {
		setStatus(status, `Could not list the packets: ${e.message}`, 'error');
	}
}

function clearDetail() {
	selected = null;
	$('#tree').replaceChildren();
	$('#hex').hidden = true;
	setStatus($('#detail-status'), 'Select a packet to see its decode.');
}

function treeNode(n) {
	const kids = n.children || [];
	if (!kids.length) return h('li', { class: 'leaf' }, n.label);
	return h('li', {}, h('details', { open: kids.length < 12 && n.depth < 1 },
		h('summary', {}, n.label), h('ul', {}, kids.map((k) => treeNode({ ...k, depth: (n.depth || 0) + 1 })))));
}

async function select(tr) {
	if (!tr || !tr.dataset.ref) return;
	for (const r of rows.querySelectorAll('tr[aria-selected="true"]')) { r.setAttribute('aria-selected', 'false'); r.tabIndex = -1; }
	tr.setAttribute('aria-selected', 'true');
	tr.tabIndex = 0;
	tr.focus();
	selected = tr.dataset.ref;
	const ds = $('#detail-status');
	setStatus(ds, 'Decoding packet…');
	try {
		const doc = await api('/v1/decode/packet?ref=' + encodeURIComponent(selected));
		if (selected !== tr.dataset.ref) return;
		$('#tree').replaceChildren(h('ul', {}, (doc.tree || []).map((n) => treeNode({ ...n, depth: 0 }))));
		$('#hex').textContent = doc.hex || '';
		$('#hex').hidden = !doc.hex;
		setStatus(ds, `Packet ${tr.firstElementChild.textContent}, ${tr.children[1].title}`);
	} catch (e) {
		$('#tree').replaceChildren();
		$('#hex').hidden = true;
		setStatus(ds, e.message, 'error');
	}
}

rows.addEventListener('keydown', (e) => {
	const tr = e.target.closest('tr');
	if (!tr) return;
	const to = { ArrowDown: tr.nextElementSibling, ArrowUp: tr.previousElementSibling,
		Home: rows.firstElementChild, End: rows.lastElementChild }[e.key];
	if (to) { e.preventDefault(); select(to); }
	else if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); select(tr); }
});

function saveState() {
	const p = new URLSearchParams();
	const f = new FormData(form);
	for (const k of ['filter', 'after', 'before', 'capture']) if (f.get(k)) p.set(k, f.get(k));
	setParams(p);
	updateDownload(criteria());
}

form.addEventListener('submit', (e) => { e.preventDefault(); saveState(); fetchPage(true); });
$('#more').addEventListener('click', () => fetchPage(false));
const p = params();
for (const k of ['filter', 'after', 'before', 'capture'])
	if (p.get(k)) form.elements[k].value = k === 'after' || k === 'before' ? rfc3339ToLocal(p.get(k)) || p.get(k) : p.get(k);
updateDownload(criteria());
fetchPage(true);

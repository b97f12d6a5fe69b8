// upload.js - /upload: files dropped or chosen go to POST /v1/captures,
// one at a time, each with a progress bar (XMLHttpRequest reports upload
// progress; fetch does not).
import { h, $, csrf, fmtBytes, setStatus } from './app.js';

const drop = $('#drop');
const input = $('#files');
const list = $('#uploads');
const queue = [];
let busy = false;

function send(file, tags, bar, note) {
	return new Promise((resolve) => {
		const q = new URLSearchParams({ name: file.name });
		if (tags) q.set('tags', tags);
		const x = new XMLHttpRequest();
		x.open('POST', '/v1/captures?' + q);
		x.setRequestHeader('X-CSRF-Token', csrf());
		x.setRequestHeader('Content-Type', 'application/octet-stream');
		x.upload.addEventListener('progress', (e) => {
			if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; }
		});
		x.addEventListener('load', () => {
			let doc = null;
			try { doc = JSON.parse(x.responseText); } catch { doc = null; }
			if (x.status >= 200 && x.status < 300 && doc) {
				bar.value = bar.max;
				note.replaceChildren(doc.duplicate ? 'Already in the vault as ' : 'Stored as ',
					h('a', { href: `/captures/${doc.id}` }, `capture ${doc.id}`), '.');
				note.className = 'status ok';
			} else {
				note.textContent = `Failed: ${(doc && (doc.message || doc.error)) || x.status + ' ' + x.statusText}`;
				note.className = 'status error';
			}
			resolve();
		});
		x.addEventListener('error', () => { note.textContent = 'Failed: the connection broke.'; note.className = 'status error'; resolve(); });
		x.send(file);
	});
}

async function pump() {
	if (busy) return;
	busy = true;
	while (queue.length) {
		const { file, bar, note } = queue.shift();
		note.textContent = 'Uploading…';
		await send(file, $('#upload').elements.tags.value.trim(), bar, note);
	}
	busy = false;
	setStatus($('#status'), 'All uploads finished.');
}

function add(files) {
	for (const file of files) {
		const bar = h('progress', { max: String(file.size || 1), value: '0', 'aria-label': `Upload of ${file.name}` });
		const note = h('span', { class: 'status' }, 'Waiting…');
		list.append(h('li', {}, h('strong', {}, file.name), ` (${fmtBytes(file.size)}) `, h('br'), bar, ' ', note));
		queue.push({ file, bar, note });
	}
	setStatus($('#status'), `${queue.length} file${queue.length === 1 ? '' : 's'} queued.`);
	pump();
}

input.addEventListener('change', () => { add(input.files); input.value = ''; });
for (const ev of ['dragenter', 'dragover']) drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add('over'); });
for (const ev of ['dragleave', 'drop']) drop.addEventListener(ev, () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); add(e.dataTransfer.files); });

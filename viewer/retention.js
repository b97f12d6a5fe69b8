// retention.js - /retention: the rules in force (GET /v1/retention), a
// preview (POST /v1/prune dry_run) and a prune after a confirmation.
import { api, h, $, fmtBytes, fmtTime, setStatus, confirmDialog } from './app.js';

const canDelete = async () => {
	try { const s = await api('/v1/session'); return /\b(delete|admin)\b/.test(s.scopes); } catch { return false; }
};

function age(s) {
	if (s === null || s === undefined) return '—';
	const unit = (v, u) => `${+v.toFixed(1)} ${u}${+v.toFixed(1) === 1 ? '' : 's'}`;
	return s >= 86400 ? unit(s / 86400, 'day') : s >= 3600 ? unit(s / 3600, 'hour') : unit(s / 60, 'minute');
}

async function loadRules() {
	try {
		const r = await api('/v1/retention');
		const dl = $('#rules');
		const add = (k, v) => dl.append(h('dt', {}, k), h('dd', {}, v));
		dl.replaceChildren();
		add('Runs every', age(r.interval_seconds));
		add('Next run', fmtTime(r.next_run));
		add('Protect tag', r.protect_tag || '—');
		add('Keep free', r.min_free && (r.min_free.bytes || r.min_free.percent) ?
			[r.min_free.bytes ? fmtBytes(r.min_free.bytes) : '', r.min_free.percent ? `${r.min_free.percent}% of the disk` : ''].filter(Boolean).join(' and ') : 'no minimum');
		add('Max total size', r.max_total_size ? fmtBytes(r.max_total_size) : 'no limit');
		const pol = r.policies || [];
		$('#policies').replaceChildren(...pol.map((p) => h('tr', {}, h('td', {}, p.name), h('td', {}, (p.tags || []).join(', ') || 'any'),
			h('td', { class: p.folder ? 'mono' : '' }, p.folder || 'any'), h('td', {}, age(p.max_age_seconds)), h('td', {}, p.age_by || ''),
			h('td', { class: 'num' }, p.max_count ?? '—'))));
		if (!pol.length) $('#policies').append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No policy: nothing is pruned by age or count.')));
	} catch (e) {
		setStatus($('#status'), e.message, 'error');
	}
}

function showPlan(p) {
	const items = p.captures || [];
	$('#plan').replaceChildren(...items.map((c) => h('tr', {},
		h('td', {}, p.dry_run ? h('a', { href: `/captures/${c.id}` }, c.name || String(c.id)) : c.name || String(c.id)),
		h('td', {}, c.policy || ''), h('td', {}, c.reason || ''), h('td', { class: 'num' }, fmtBytes(c.file_size)),
		h('td', {}, p.dry_run ? 'would be deleted' : c.deleted ? 'deleted' : c.kept ? `kept: ${c.kept}` : `error: ${c.error || ''}`))));
	if (!items.length) $('#plan').append(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'Nothing to delete.')));
	setStatus($('#plan-status'), `${p.dry_run ? 'Preview' : 'Prune'}: ${items.length} capture${items.length === 1 ? '' : 's'}, ${fmtBytes(p.bytes_freed)} ${p.dry_run ? 'would be' : ''} freed.`, p.dry_run ? '' : 'ok');
}

async function run(dry) {
	setStatus($('#plan-status'), dry ? 'Planning…' : 'Pruning…');
	try {
		showPlan(await api('/v1/prune', { method: 'POST', json: { dry_run: dry } }));
	} catch (e) {
		setStatus($('#plan-status'), e.message, 'error');
	}
}

$('#preview').addEventListener('click', () => run(true));
$('#prune').addEventListener('click', async () => {
	const yes = await confirmDialog({ title: 'Prune now?', message: 'Every capture the rules select is deleted now. Use Preview first to see which.', confirm: 'Prune', danger: true });
	if (yes) run(false); else $('#prune').focus();
});
if (!(await canDelete())) $('#prune').disabled = true;
loadRules();

// tokens.js - /tokens (admins): list, create and revoke API tokens.
import { api, h, $, fmtTime, setStatus, confirmDialog } from './app.js';

const status = $('#status');

async function load() {
	try {
		const d = await api('/v1/tokens');
		$('#tokens').replaceChildren(...d.tokens.map((t) => {
			const revoke = h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke token ${t.name}` }, 'Revoke…');
			revoke.addEventListener('click', async () => {
				const yes = await confirmDialog({ title: `Revoke ${t.name}?`, message: 'Clients using it, and browsers logged in with it, lose access at once.', confirm: 'Revoke', danger: true });
				if (!yes) return revoke.focus();
				try { await api(`/v1/tokens/${encodeURIComponent(t.name)}`, { method: 'DELETE' }); setStatus(status, `Revoked ${t.name}.`, 'ok'); load(); } catch (e) { setStatus(status, e.message, 'error'); }
			});
			return h('tr', {}, h('td', {}, t.name), h('td', {}, (t.scopes || []).join(', ')), h('td', {}, (t.tags || []).join(', ')),
				h('td', { class: 'time' }, fmtTime(t.created)), h('td', {}, t.cloudshark ? 'yes' : 'no'), h('td', {}, revoke));
		}));
	} catch (e) {
		setStatus(status, e.message, 'error');
	}
}

$('#create').addEventListener('submit', async (e) => {
	e.preventDefault();
	const f = new FormData(e.target);
	const body = { name: f.get('name'), scopes: f.getAll('scope'), cloudshark: f.get('cloudshark') === 'on',
		tags: String(f.get('tags') || '').split(',').map((s) => s.trim()).filter(Boolean) };
	try {
		const t = await api('/v1/tokens', { method: 'POST', json: body });
		$('#secret-text').textContent = t.secret;
		$('#secret-link').textContent = `${location.origin}/?token=${t.secret}`;
		$('#secret').hidden = false;
		e.target.reset();
		setStatus(status, `Created ${t.name}.`, 'ok');
		load();
	} catch (err) {
		setStatus(status, err.message, 'error');
	}
});

load();

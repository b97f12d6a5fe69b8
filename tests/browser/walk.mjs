// walk.mjs - walks capvault's web viewer in chromium (puppeteer-core,
// /usr/bin/chromium, never a downloaded browser) as a person would, with
// axe-core on every page and a screenshot of each. Exits 1 on the first
// failed step, naming it. Environment: BASE (the daemon's URL), TOKEN (an
// admin token), CHROMIUM, PROFILE (a fresh folder), SCREENSHOTS, UPLOAD
// (a capture file to upload).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const { BASE, TOKEN, CHROMIUM, PROFILE, SCREENSHOTS, UPLOAD } = process.env;

let step = 'start';
let decodeThere = false;
const problems = [];
const ok = (cond, what) => { if (!cond) throw new Error(`${step}: ${what}`); };

const browser = await puppeteer.launch({
	executablePath: CHROMIUM,
	headless: true,
	userDataDir: PROFILE,
	args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync',
		'--disable-dev-shm-usage'],
});

const page = await browser.newPage();

async function main() {
	await page.setViewport({ width: 1280, height: 860 });
	// Any CSP violation, script error or failed asset is a failure.
	page.on('console', (m) => {
		if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`${step}: console: ${m.text()}`);
	});
	page.on('pageerror', (e) => problems.push(`${step}: page error: ${e.message}`));
	page.on('requestfailed', (r) => {
		if (!/net::ERR_ABORTED/.test(r.failure()?.errorText || '')) problems.push(`${step}: request failed: ${r.url()}`);
	});
	page.on('response', (r) => {
		if (r.url().includes('/assets/') && r.status() >= 400) problems.push(`${step}: asset ${r.url()} -> ${r.status()}`);
	});

	const go = async (path) => page.goto(BASE + path, { waitUntil: 'networkidle0' });
	const path = () => { const u = new URL(page.url()); return u.pathname + u.search; };
	const text = (sel) => page.$eval(sel, (e) => e.textContent.trim());
	const waitText = (sel, re) => page.waitForFunction((s, r) => {
		const e = document.querySelector(s);
		return e && new RegExp(r).test(e.textContent);
	}, { timeout: 10000 }, sel, re.source);

	async function axe(name) {
		await page.evaluate(axeSource); // Runtime.evaluate: not subject to the page's CSP
		const res = await page.evaluate(async () => {
			const r = await window.axe.run(document, { resultTypes: ['violations'] });
			return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
				.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join('; ')})`);
		});
		ok(res.length === 0, `axe-core on ${name}: ${res.join(' | ')}`);
	}
	async function shot(name, full = true) {
		await page.screenshot({ path: `${SCREENSHOTS}/${name}.png`, fullPage: full });
	}

	// 1. A page asked for without a login: the login form, nothing else.
	step = 'logged out';
	await go('/captures/4');
	ok(path() === '/login?next=/captures/4', `sent to the login page, got ${path()}`);
	ok(!(await page.content()).includes('datacenter'), 'no capture name shown');
	const api = await page.evaluate(async () => (await fetch('/v1/captures')).status);
	ok(api === 401, `API answers 401 without a login, got ${api}`);
	await axe('login');
	await shot('01-login');

	// 2. Login by form, then on to the page asked for.
	step = 'login by form';
	await page.type('input[name="token"]', 'not-a-token');
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.keyboard.press('Enter')]);
	ok(/not valid/.test(await page.content()), 'a bad token is refused with a message');
	await shot('02-login-refused');
	await page.type('input[name="token"]', TOKEN);
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form[action="/login"] button')]);
	ok(path() === '/captures/4', `lands on the page asked for, got ${path()}`);
	await waitText('#title', /datacenter-uplink/);

	// 3. Logout, then login by link: the token leaves the address bar.
	step = 'logout';
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form.logout button')]);
	ok(path().startsWith('/login'), `logout goes to the login page, got ${path()}`);
	step = 'login by link';
	await go(`/?token=${TOKEN}`);
	ok(path() === '/', `the token is gone from the address bar: ${path()}`);
	ok(!page.url().includes(TOKEN), 'no token in the URL');
	const cookies = await page.cookies();
	const sc = cookies.find((c) => c.name === 'capvault_session');
	ok(sc && sc.httpOnly && sc.sameSite === 'Strict' && sc.expires > Date.now() / 1000, 'HttpOnly SameSite=Strict cookie with an expiry');
	ok(!(await page.evaluate(() => document.cookie)).includes('capvault_session'), 'the cookie is not readable by scripts');

	// 4. The capture list and its search.
	step = 'list';
	await page.waitForSelector('#captures tbody tr td.name a');
	const rows = await page.$$eval('#captures tbody tr', (t) => t.length);
	ok(rows === 5, `5 captures listed, got ${rows}`);
	await axe('list');
	await shot('03-list');
	step = 'search';
	await page.type('input[name="name"]', 'datacenter');
	await page.keyboard.press('Enter');
	await page.waitForFunction(() => document.querySelectorAll('#captures tbody tr').length === 1);
	ok((await text('#captures tbody tr td.name')).includes('datacenter-uplink.pcapng'), 'search by name finds it');
	ok(new URL(page.url()).searchParams.get('name') === 'datacenter', 'the search is in the URL');
	await page.click('button[type="reset"]');
	await page.waitForFunction(() => document.querySelectorAll('#captures tbody tr').length === 5);
	await page.type('input[name="tags"]', 'site2');
	await page.keyboard.press('Enter');
	await page.waitForFunction(() => document.querySelectorAll('#captures tbody tr').length === 1);
	ok((await text('#captures tbody tr td.name')).includes('branch-office-2'), 'search by tag finds it');
	await shot('04-search');
	await page.click('button[type="reset"]');
	await page.waitForFunction(() => document.querySelectorAll('#captures tbody tr').length === 5);
	// Sort by packets: the 120-packet capture first.
	await page.select('select[name="sort"]', '-packets');
	await page.click('#search button[type="submit"]');
	await page.waitForFunction(() => /datacenter/.test(document.querySelector('#captures tbody tr td.name')?.textContent || ''));
	// Paging: 2 per page.
	await page.select('select[name="limit"]', '25');
	step = 'capture page';
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }),
		page.click('#captures tbody tr td.name a')]);
	ok(path() === '/captures/4', `the capture link, got ${path()}`);
	await waitText('#summary', /120/);
	ok(/datacenter-uplink\.pcapng/.test(await text('#title')), 'the name is the title');
	ok(/uplink/.test(await text('#summary')), 'tags shown');
	await axe('capture');
	await shot('05-capture');

	step = 'edit tags and comment';
	await page.$eval('#edit input[name="tags"]', (e) => { e.value = ''; });
	await page.type('#edit input[name="tags"]', 'dc, uplink, reviewed');
	await page.type('#edit textarea[name="comment"]', 'Checked by the browser test');
	await page.click('#edit button[type="submit"]');
	await waitText('#edit-status', /Saved/);
	const rec = await page.evaluate(async () => (await fetch('/v1/captures/4')).json());
	ok(rec.tags.includes('reviewed') && rec.comment === 'Checked by the browser test', 'saved through the API');

	step = 'annotate';
	await page.type('#annotate input[name="frame"]', '3');
	await page.type('#annotate input[name="text"]', 'the handshake starts here');
	await page.click('#annotate button[type="submit"]');
	await waitText('#annotations', /the handshake starts here/);
	ok(/^3/.test(await text('#annotations tr td')), 'the annotation names frame 3');
	await shot('06-annotated');

	step = 'download';
	const href = await page.$eval('#download', (a) => a.getAttribute('href'));
	const dl = await page.evaluate(async (h) => {
		const r = await fetch(h);
		const b = new Uint8Array(await r.arrayBuffer());
		return { status: r.status, size: b.length, magic: Array.from(b.slice(0, 4)) };
	}, href);
	ok(dl.status === 200 && dl.size === rec.file_size, `the download is the capture (${JSON.stringify(dl)})`);
	ok(dl.magic.join() === '10,13,13,10', 'pcapng bytes');

	step = 'packets';
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('#packets')]);
	ok(path() === '/packets?capture=4', `packets of the capture, got ${path()}`);
	// The decoder's routes come from the decode branch; without them the
	// page must say so plainly, and the rest of the walk goes on.
	decodeThere = await page.evaluate(async () => (await fetch('/v1/decode/list?limit=1')).status !== 404);
	if (decodeThere) {
		await page.waitForSelector('#packet-rows tr[data-ref]', { timeout: 20000 });
		const nrows = await page.$$eval('#packet-rows tr[data-ref]', (t) => t.length);
		ok(nrows === 100, `the first 100 packets listed, got ${nrows}`);
		ok(!(await page.$eval('#more', (b) => b.hidden)), 'a next page is offered');
		await page.click('#packet-rows tr[data-ref]');
		await page.waitForSelector('#tree summary', { timeout: 20000 });
		ok(/Frame/.test(await text('#tree')), 'the detail pane shows the decode tree');
		step = 'packets keyboard';
		await page.keyboard.press('ArrowDown');
		await page.waitForFunction(() => document.activeElement?.matches('#packet-rows tr:nth-child(2)') &&
			document.activeElement.getAttribute('aria-selected') === 'true');
		await waitText('#detail-status', /^Packet 2, /);
		await axe('packets');
		await shot('07-packets');
		step = 'packets next page';
		await page.click('#more');
		await page.waitForFunction(() => document.querySelectorAll('#packet-rows tr[data-ref]').length === 120);
	} else {
		console.log('walk: WARNING: no /v1/decode routes in this build: the packet list and detail pane were not walked');
		await waitText('#status', /Could not list the packets/);
		ok(await page.$eval('#status', (e) => e.classList.contains('error')), 'the error is shown as one');
		await axe('packets');
		await shot('07-packets');
	}
	step = 'packets filter';
	await page.type('input[name="filter"]', 'tcp');
	await page.keyboard.press('Enter');
	await page.waitForFunction(() => !/Decoding/.test(document.querySelector('#status').textContent));
	const dlp = await page.$eval('#download', (a) => a.getAttribute('href'));
	ok(/captures=4/.test(dlp) && /filter=tcp/.test(dlp), `the selection's download link: ${dlp}`);
	const sel = await page.evaluate(async (h) => {
		const r = await fetch(h);
		const b = new Uint8Array(await r.arrayBuffer());
		return { status: r.status, magic: Array.from(b.slice(0, 4)), size: b.length };
	}, dlp);
	ok(sel.status === 200 && sel.size > 24 && ['212,195,178,161', '10,13,13,10'].includes(sel.magic.join()), `the selection as a capture file (${JSON.stringify(sel)})`);

	step = 'upload';
	await go('/upload');
	await axe('upload');
	await page.focus('#files');
	ok(await page.evaluate(() => getComputedStyle(document.querySelector('label[for="files"]')).outlineStyle === 'solid'),
		'the file chooser shows its focus');
	const input = await page.$('#files');
	await input.uploadFile(UPLOAD);
	await page.waitForSelector('#uploads li a', { timeout: 20000 });
	const up = await text('#uploads li');
	ok(/Stored as capture 6/.test(up), `upload stored: ${up}`);
	ok(await page.$eval('#uploads progress', (p) => p.value === p.max), 'progress complete');
	await shot('08-upload');

	step = 'imports';
	await go('/imports');
	await page.waitForSelector('#folders tr');
	ok(/\/in$/m.test(await text('#folders tr td')), 'the import folder listed');
	ok(/notes\.pcap/.test(await text('#failures')), 'the failed import listed');
	await axe('imports');
	await shot('09-imports');

	step = 'retention';
	await go('/retention');
	await page.click('#preview');
	await waitText('#plan-status', /Preview/);
	await axe('retention');
	await shot('10-retention');
	step = 'retention prune dialog';
	await page.click('#prune');
	await page.waitForSelector('dialog[open]');
	await page.keyboard.press('Escape');
	await page.waitForFunction(() => !document.querySelector('dialog'));
	ok(await page.evaluate(() => document.activeElement?.id === 'prune'), 'focus back on the button');

	step = 'tokens';
	await go('/tokens');
	await page.waitForSelector('#tokens tr');
	ok(/admin-web/.test(await text('#tokens')), 'the token listed');
	await axe('tokens');
	await shot('11-tokens');

	step = 'delete';
	await go('/captures/6');
	await waitText('#title', /new-upload/);
	await page.click('#delete');
	await page.waitForSelector('dialog[open]');
	await axe('delete dialog');
	await shot('12-delete-confirm', false);
	await page.keyboard.press('Escape');
	await page.waitForFunction(() => !document.querySelector('dialog'));
	ok((await page.evaluate(async () => (await fetch('/v1/captures/6')).status)) === 200, 'Escape keeps it');
	await page.click('#delete');
	await page.waitForSelector('dialog[open]');
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('dialog button.danger')]);
	ok(new URL(page.url()).pathname === '/', `back to the list, got ${path()}`);
	ok((await page.evaluate(async () => (await fetch('/v1/captures/6')).status)) === 404, 'deleted');
	await waitText('#status', /Deleted/);

	step = 'keyboard';
	await go('/');
	await page.keyboard.press('Tab');
	ok(await page.evaluate(() => document.activeElement?.classList.contains('skip')), 'Tab reaches the skip link first');
	await page.keyboard.press('Tab');
	ok(await page.evaluate(() => document.activeElement?.classList.contains('brand')), 'then the home link');

	step = 'phone';
	await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
	await go('/');
	await page.waitForSelector('#captures tbody tr td.name a');
	const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	ok(overflow <= 1, `no sideways scrolling of the page on a phone (${overflow}px)`);
	await shot('13-phone-list');
	await go('/captures/4');
	await waitText('#summary', /120/);
	await shot('14-phone-capture');
	await go('/packets?capture=4');
	if (decodeThere) await page.waitForSelector('#packet-rows tr[data-ref]', { timeout: 20000 });
	await shot('15-phone-packets', false);
	await page.setViewport({ width: 1280, height: 860 });

	step = 'a link from another site';
	// SameSite=Strict keeps the cookie from a cross-site navigation; the
	// login page finds the live session and goes on.
	await page.goto('about:blank');
	await page.evaluate((u) => { location.href = u; }, `${BASE}/login?next=/captures/4`);
	await page.waitForFunction(() => location.pathname === '/captures/4', { timeout: 10000 });
	await waitText('#title', /datacenter-uplink/);

	step = 'logout at the end';
	await go('/');
	await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), page.click('form.logout button')]);
	await go('/captures/4');
	ok(path() === '/login?next=/captures/4', 'logged out: the login page again');
	ok(problems.length === 0, problems.join('\n'));
}

try {
	await main();
	console.log('walk: every step passed');
} catch (e) {
	console.error(`FAIL: ${e.message.startsWith(step) ? "" : step + ": "}${e.message}`);
	console.error(`  at ${page.url()}: ${(await page.evaluate(() => document.body?.innerText || '').catch(() => '')).slice(0, 600)}`);
	await page.screenshot({ path: `${SCREENSHOTS}/failure.png`, fullPage: true }).catch(() => {});
	for (const p of problems) console.error(`  ${p}`);
	process.exitCode = 1;
} finally {
	await browser.close();
}

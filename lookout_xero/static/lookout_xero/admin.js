/* lookout_xero admin: Test connection, Preview, the live status panel and the funder's Push now,
 * Stop syncing and Restore in Xero.
 * Every answer comes from the server as JSON; text is set with textContent, and the only HTML
 * inserted (the preview report) is rendered and escaped by a Django template. */
'use strict';
{
    const POLL_ACTIVE_MS = 1000;
    const POLL_IDLE_MS = 10000;

    function csrfToken() {
        const input = document.querySelector('input[name=csrfmiddlewaretoken]');
        return input ? input.value : '';
    }

    async function request(url, fields) {
        const options = {credentials: 'same-origin', headers: {'X-CSRFToken': csrfToken()}};
        if (fields) {
            options.method = 'POST';
            options.body = new FormData();
            for (const [name, value] of Object.entries(fields)) {
                options.body.append(name, value);
            }
        }
        const response = await fetch(url, options);
        if (!response.ok) {
            throw new Error(`The server answered ${response.status} ${response.statusText}.`);
        }
        return response.json();
    }

    function showResult(box, kind, text) {
        box.hidden = false;
        box.className = `lx-result lx-result--${kind}`;
        box.textContent = text;
    }

    function fieldValue(id) {
        const input = document.getElementById(id);
        return input ? input.value : '';
    }

    function setUpTestConnection(button) {
        const box = document.querySelector('[data-lx-test-result]');
        button.addEventListener('click', async () => {
            button.disabled = true;
            showResult(box, 'busy', 'Asking Xero…');
            try {
                const answer = await request(button.dataset.url, {
                    connection: button.dataset.connection,
                    client_id: fieldValue('id_client_id'),
                    client_secret: fieldValue('id_client_secret'),
                    scope: fieldValue('id_scope'),
                });
                showResult(box, answer.ok ? 'ok' : 'error', answer.message);
            } catch (error) {
                showResult(box, 'error', error.message);
            } finally {
                button.disabled = false;
            }
        });
    }

    function setUpPreview(button) {
        const box = document.querySelector('[data-lx-preview-result]');
        async function poll(url) {
            const run = await request(url);
            if (run.status === 'completed') {
                box.hidden = false;
                box.className = 'lx-result';
                box.innerHTML = run.html;
                button.disabled = false;
            } else if (run.active) {
                showResult(box, 'busy', `Preview #${run.id}: ${run.status_label.toLowerCase()}, reading Xero's contacts…`);
                setTimeout(() => poll(url).catch(fail), POLL_ACTIVE_MS);
            } else {
                showResult(box, 'error', `Preview #${run.id} ${run.status_label.toLowerCase()}: ${run.message}`);
                button.disabled = false;
            }
        }
        function fail(error) {
            showResult(box, 'error', error.message);
            button.disabled = false;
        }
        button.addEventListener('click', async () => {
            button.disabled = true;
            showResult(box, 'busy', 'Queuing a preview…');
            try {
                const started = await request(button.dataset.url, {});
                await poll(started.url);
            } catch (error) {
                fail(error);
            }
        });
    }

    function lookUp(data, path) {
        return path.split('.').reduce((value, key) => (value == null ? value : value[key]), data);
    }

    function render(panel, data) {
        for (const element of panel.querySelectorAll('[data-lx-field]')) {
            const value = lookUp(data, element.dataset.lxField);
            element.textContent = value == null || value === '' ? '' : String(value);
        }
        const badge = panel.querySelector('[data-lx-badge]');
        badge.className = `lx-badge lx-badge--${data.health.key}`;
        badge.textContent = data.health.label;
        const run = data.run;
        panel.querySelector('[data-lx-run]').hidden = !run;
        if (!run) {
            return false;
        }
        const bar = panel.querySelector('[data-lx-progress]');
        bar.setAttribute('aria-valuenow', run.percent);
        bar.firstElementChild.style.width = `${run.percent}%`;
        const cancel = panel.querySelector('[data-lx-cancel]');
        if (cancel) {
            cancel.hidden = !run.active;
        }
        return run.active;
    }

    function setUpStatus(panel) {
        let active = panel.dataset.active === 'true';
        async function refresh() {
            try {
                active = render(panel, await request(panel.dataset.url));
            } catch (error) {
                // Keep the last figures and the pace: a busy server (SQLite locked by the worker,
                // say) must not leave a finished run's bar half full until the next slow poll.
            }
            setTimeout(refresh, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
        }
        setTimeout(refresh, active ? POLL_ACTIVE_MS : POLL_IDLE_MS);
    }

    function postFrom(button, url) {
        // A form of its own, outside the funder's form, so Save stays that form's default button.
        const form = document.createElement('form');
        form.method = 'post';
        form.action = url;
        const token = document.createElement('input');
        token.type = 'hidden';
        token.name = 'csrfmiddlewaretoken';
        token.value = csrfToken();
        form.append(token);
        document.body.append(form);
        button.disabled = true;
        form.submit();
    }

    async function copyLink(button) {
        // The new credentials link's URL, shown once in the message beside this button.
        const source = button.parentElement.querySelector('[data-lx-copy-source]');
        const text = source ? source.textContent : '';
        try {
            await navigator.clipboard.writeText(text);
        } catch (error) {
            // No clipboard API (a plain-http page that is not localhost): select it to copy.
            const range = document.createRange();
            range.selectNodeContents(source);
            window.getSelection().removeAllRanges();
            window.getSelection().addRange(range);
            document.execCommand('copy');
        }
        button.textContent = 'Copied';
    }

    document.addEventListener('DOMContentLoaded', () => {
        document.querySelectorAll('[data-lx-test]').forEach(setUpTestConnection);
        document.querySelectorAll('[data-lx-preview]').forEach(setUpPreview);
        document.querySelectorAll('[data-lx-status]').forEach(setUpStatus);
        document.querySelectorAll('[data-lx-push]').forEach((button) => {
            button.addEventListener('click', () => postFrom(button, button.dataset.lxPush));
        });
        document.querySelectorAll('[data-lx-copy]').forEach((button) => {
            button.addEventListener('click', () => copyLink(button));
        });
        // The funder panel's Stop syncing and Restore in Xero: each posts to its own URL.
        document.querySelectorAll('[data-lx-post]').forEach((button) => {
            button.addEventListener('click', () => postFrom(button, button.dataset.lxPost));
        });
    });
}

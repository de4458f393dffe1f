// labserv's listing page: times in the reader's own zone, sorting and checksums on a tap,
// files dropped on the page sent through the upload form, and (with writes on) a delete
// button on each row. Sorting, checksums and deletes are buttons, not links, so that a
// crawler (wget -r, lftp, rclone) fetches only the tree and never deletes anything.
const now = new Date();
for (const t of document.querySelectorAll('time')) {
  const d = new Date(t.dateTime);
  const o = d.toDateString() == now.toDateString()
    ? {hour: '2-digit', minute: '2-digit', hour12: false}
    : d.getFullYear() == now.getFullYear()
      ? {month: 'short', day: 'numeric'}
      : {year: 'numeric', month: 'short'};
  t.textContent = d.toLocaleString([], o);
  t.title = d.toLocaleString();
}
for (const b of document.querySelectorAll('button[data-q]')) {
  b.addEventListener('click', () => { location.search = b.dataset.q; });
}
for (const b of document.querySelectorAll('button[data-f]')) {
  b.addEventListener('click', async () => {
    const row = b.parentElement;
    const shown = row.nextElementSibling;
    if (shown && shown.classList.contains('sum')) { shown.remove(); return; }
    b.textContent = '…';
    const line = document.createElement('li');
    line.className = 'sum';
    try {
      const r = await fetch(b.dataset.f + '?sha256');
      line.textContent = r.ok ? 'SHA-256 ' + (await r.text()).split(' ')[0] : 'SHA-256: ' + r.status;
    } catch (e) {
      line.textContent = 'SHA-256: ' + e;
    }
    b.textContent = 'SHA';
    row.after(line);
  });
}
for (const b of document.querySelectorAll('button[data-d]')) {
  b.addEventListener('click', async () => {
    const name = decodeURIComponent(b.dataset.d);
    const dir = b.dataset.dir;
    if (!confirm(dir ? 'Delete the folder ' + name + ' and all it holds?' : 'Delete ' + name + '?')) return;
    const r = await fetch(b.dataset.d + (dir ? '?recursive' : ''), {method: 'DELETE'});
    if (r.ok) {
      const row = b.parentElement;
      const sum = row.nextElementSibling;
      if (sum && sum.classList.contains('sum')) sum.remove();
      row.remove();
    } else {
      alert('Not deleted: ' + (await r.text()));
    }
  });
}
const f = document.getElementById('up');
if (f) {
  const i = f.querySelector('input');
  // Dragging files in works only with a mouse, not on a touch screen: say "drop" only there.
  if (!matchMedia('(pointer: coarse)').matches) {
    f.querySelector('.drop').hidden = false;
    addEventListener('dragover', e => { e.preventDefault(); f.classList.add('over'); });
    addEventListener('dragleave', () => f.classList.remove('over'));
    addEventListener('drop', e => {
      e.preventDefault();
      f.classList.remove('over');
      i.files = e.dataTransfer.files;
      f.requestSubmit();
    });
  }
}

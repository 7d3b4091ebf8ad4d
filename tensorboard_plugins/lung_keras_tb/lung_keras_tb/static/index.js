// Segmentation dashboard of lung_keras_tb: a plain ES module, no build step.
// TensorBoard loads it inside an iframe whose <base href> is this plugin's route prefix,
// so './runs' etc. resolve to /data/plugin/lung_segmentation/runs.
//
// Security: run, tag and sample names reach the page only through textContent,
// option.value / dataset (attribute values) and URLSearchParams, never parsed as HTML.
//
// Two views: "Runs" (one run's gallery per step, or two runs side by side) and "Arms"
// (two arms -- runs grouped across seeds, see lung_keras_tb/arms.py -- paired image by
// image on one test set, with seed-averaged or single-seed Dice).
//
// Link format (the Arms view's state lives in TensorBoard's URL hash, after the tab name;
// lung_keras_tb/links.py writes the same format):
//   http://<host>:<port>/#lung_segmentation&seg_view=arms&seg_tag=<tag>&seg_a=<arm A>
//       &seg_b=<arm B>&seg_seed=mean|<k>&seg_sort=abs|gain|loss|id|dice-a|dice-b&seg_image=<id>
// Values are percent-encoded (encodeURIComponent). seg_a / seg_b match an arm exactly or,
// failing that, the only arm whose name ends with "/<value>" (so a link written for
// `--logdir <out>/runs` also works with a parent logdir). Missing keys take defaults.

const OVERLAYS = [
  ['both', 'Mask + prediction outline'],
  ['mask', 'True mask'],
  ['prediction', 'Prediction (thresholded)'],
  ['error', 'Error map (FP / FN)'],
  ['probability', 'Prediction probability'],
  ['none', 'Image only'],
];
const SORTS = [
  ['dice-asc', 'Dice, worst first'],
  ['dice-desc', 'Dice, best first'],
  ['id', 'Sample id'],
  ['delta-asc', 'Dice change B\u2212A, most worse first'],
  ['delta-desc', 'Dice change B\u2212A, most improved first'],
];
const ARM_SORTS = [
  ['abs', 'Largest |\u0394 Dice| first'],
  ['gain', 'Biggest gain (B\u2212A) first'],
  ['loss', 'Biggest loss (B\u2212A) first'],
  ['id', 'Sample id'],
  ['dice-a', 'Dice A, worst first'],
  ['dice-b', 'Dice B, worst first'],
];
const LINK_KEYS = {view: 'seg_view', tag: 'seg_tag', a: 'seg_a', b: 'seg_b', seed: 'seg_seed',
                   sort: 'seg_sort', image: 'seg_image'};
const AUTO_REFRESH_MS = 30000;

const state = {
  runs: [],
  run: null,
  tag: null,
  compareRun: '',
  steps: [],
  stepIndex: 0,
  overlay: 'both',
  sort: 'dice-asc',
  filterText: '',
  diceMax: null,
  data: null, // {mode: 'single'|'compare', ...response}
  requestId: 0,
};
const arm = {
  view: 'runs',
  listing: null, // response of ./arms
  tag: null,
  a: null,
  b: null,
  seed: 'mean',
  sort: 'abs',
  image: null,
  link: null, // state read from the URL, applied once the arms are known
  data: null, // response of ./arm_compare
  requestId: 0,
};
const ui = {};
const pixelCache = new Map();

export async function render() {
  buildPage();
  arm.link = readLinkState();
  if (arm.link.view === 'arms') setView('arms');
  await refreshRuns();
  if (arm.view === 'arms') await refreshArms();
  setInterval(() => {
    if (!ui.auto.checked) return;
    refreshRuns();
    if (arm.view === 'arms') refreshArms();
  }, AUTO_REFRESH_MS);
}

// ---------------------------------------------------------------- DOM helpers

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.appendChild(child);
  return node;
}

function labelled(text, control) {
  return el('label', {className: 'seg-control'}, [el('span', {text}), control]);
}

function fillSelect(select, entries, selected) {
  select.replaceChildren();
  for (const [value, text] of entries) {
    const option = document.createElement('option');
    option.value = value;
    option.textContent = text;
    if (value === selected) option.selected = true;
    select.appendChild(option);
  }
}

function formatDice(value) {
  return value === null || value === undefined ? 'n/a' : value.toFixed(3);
}

function formatDelta(value) {
  if (value === null || value === undefined) return 'n/a';
  return (value >= 0 ? '+' : '\u2212') + Math.abs(value).toFixed(3);
}

function setStatus(text, isError = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle('seg-error', isError);
}

// ---------------------------------------------------------------- page

const CSS = `
  body { font-family: Roboto, Arial, sans-serif; font-size: 13px; margin: 0; color: #212121; }
  #seg-root { padding: 12px 16px; }
  .seg-controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: flex-end;
    padding-bottom: 10px; border-bottom: 1px solid #ddd; }
  .seg-control { display: flex; flex-direction: column; gap: 3px; }
  .seg-control > span { font-size: 11px; color: #616161; text-transform: uppercase; letter-spacing: .03em; }
  select, input[type=search], input[type=number] { font-size: 13px; padding: 3px 4px; }
  input[type=number] { width: 70px; }
  #seg-step { width: 200px; }
  .seg-legend { display: flex; gap: 14px; margin: 8px 0 4px; font-size: 12px; color: #424242; }
  .seg-swatch { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
  #seg-status { margin: 6px 0 10px; color: #424242; }
  #seg-status.seg-error { color: #c62828; font-weight: 500; }
  #seg-gallery { display: flex; flex-wrap: wrap; gap: 12px; }
  .seg-card { border: 1px solid #ddd; border-radius: 4px; padding: 6px; background: #fafafa; }
  .seg-card .seg-id { font-weight: 500; margin-bottom: 4px; max-width: 400px; overflow-wrap: anywhere; }
  .seg-panes { display: flex; gap: 6px; }
  .seg-pane { display: flex; flex-direction: column; align-items: center; gap: 2px; }
  .seg-pane canvas { width: 192px; height: 192px; background: #000; cursor: zoom-in; }
  .seg-card.seg-large .seg-pane canvas { width: 384px; height: 384px; cursor: zoom-out; }
  .seg-run-name { font-size: 11px; color: #616161; max-width: 192px; overflow-wrap: anywhere; }
  .seg-dice { font-variant-numeric: tabular-nums; }
  .seg-delta { margin-top: 4px; font-weight: 500; font-variant-numeric: tabular-nums; }
  .seg-delta.seg-better { color: #2e7d32; }
  .seg-delta.seg-worse { color: #c62828; }
  .seg-only { margin-top: 8px; color: #616161; }
  .seg-view-bar { display: flex; gap: 18px; align-items: flex-end; margin-bottom: 10px; }
  #arm-status { margin: 6px 0 10px; color: #424242; }
  #arm-status.seg-error { color: #c62828; font-weight: 500; }
  #arm-link { font-size: 12px; overflow-wrap: anywhere; }
  .arm-body { display: flex; gap: 16px; align-items: flex-start; }
  .arm-list { max-height: 80vh; overflow-y: auto; border: 1px solid #ddd; }
  #arm-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  #arm-table th, #arm-table td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
  #arm-table th { position: sticky; top: 0; background: #f5f5f5; font-weight: 500; }
  #arm-table td.arm-id, #arm-table th.arm-id { text-align: left; max-width: 260px; overflow-wrap: anywhere; }
  #arm-table tbody tr { cursor: pointer; }
  #arm-table tbody tr:hover { background: #f1f8e9; }
  #arm-table tbody tr.arm-selected { background: #e3f2fd; }
  .arm-delta.seg-better { color: #2e7d32; }
  .arm-delta.seg-worse { color: #c62828; }
  #arm-detail { display: flex; flex-direction: column; gap: 6px; }
  #arm-detail .seg-id { font-weight: 500; overflow-wrap: anywhere; max-width: 900px; }
  .arm-panes { display: grid; grid-template-columns: repeat(3, max-content); gap: 8px; }
  .arm-pane { display: flex; flex-direction: column; align-items: center; gap: 2px; }
  .arm-pane canvas { width: 192px; height: 192px; background: #000; }
  .arm-pane .seg-run-name { max-width: 192px; }
  .arm-missing { width: 192px; height: 192px; display: flex; align-items: center; justify-content: center;
    text-align: center; background: #eee; color: #616161; font-size: 12px; }
`;

function buildPage() {
  document.head.appendChild(el('style', {text: CSS}));
  ui.run = el('select', {id: 'seg-run'});
  ui.tag = el('select', {id: 'seg-tag'});
  ui.compare = el('select', {id: 'seg-compare'});
  ui.step = el('input', {id: 'seg-step', type: 'range', min: '0', max: '0', value: '0', step: '1'});
  ui.stepLabel = el('span', {id: 'seg-step-label', text: '\u2013'});
  ui.overlay = el('select', {id: 'seg-overlay'});
  ui.sort = el('select', {id: 'seg-sort'});
  ui.filter = el('input', {id: 'seg-filter', type: 'search', placeholder: 'id contains\u2026'});
  ui.diceMax = el('input', {id: 'seg-dice-max', type: 'number', min: '0', max: '1', step: '0.05',
                            placeholder: 'any'});
  ui.refresh = el('button', {id: 'seg-refresh', type: 'button', text: 'Refresh'});
  ui.auto = el('input', {id: 'seg-auto', type: 'checkbox'});
  ui.auto.checked = true;
  ui.status = el('div', {id: 'seg-status', text: 'Loading\u2026'});
  ui.gallery = el('div', {id: 'seg-gallery'});
  fillSelect(ui.overlay, OVERLAYS, state.overlay);
  fillSelect(ui.sort, SORTS, state.sort);

  const stepBox = el('div', {className: 'seg-step-box'}, [ui.step, ui.stepLabel]);
  const controls = el('div', {className: 'seg-controls'}, [
    labelled('Run', ui.run),
    labelled('Tag', ui.tag),
    labelled('Compare with run', ui.compare),
    labelled('Step', stepBox),
    labelled('Overlay', ui.overlay),
    labelled('Sort', ui.sort),
    labelled('Filter id', ui.filter),
    labelled('Dice \u2264', ui.diceMax),
    el('div', {className: 'seg-control'}, [
      el('label', {}, [ui.auto, el('span', {text: ' auto-refresh'})]),
      ui.refresh,
    ]),
  ]);
  const swatch = (color, text) =>
    el('span', {}, [el('span', {className: 'seg-swatch', style: `background:${color}`}), el('span', {text})]);
  ui.legend = el('div', {className: 'seg-legend'});
  ui.view = el('select', {id: 'seg-view'});
  fillSelect(ui.view, [['runs', 'Runs (one run, or two runs)'],
                       ['arms', 'Arms A/B (test images across seeds)']], arm.view);
  ui.runsView = el('div', {id: 'seg-runs-view'}, [controls, ui.legend, ui.status, ui.gallery]);
  ui.armView = buildArmView();
  ui.armView.hidden = true;
  document.body.appendChild(
    el('div', {id: 'seg-root'}, [
      el('div', {className: 'seg-view-bar'}, [labelled('View', ui.view)]),
      ui.runsView, ui.armView]));
  ui.view.addEventListener('change', async () => {
    setView(ui.view.value);
    if (arm.view === 'arms') await refreshArms();
    writeLinkState();
  });
  ui.legendEntries = {
    both: [swatch('rgb(0,200,83)', 'true mask'), swatch('rgb(255,61,0)', 'prediction outline')],
    mask: [swatch('rgb(0,200,83)', 'true mask')],
    prediction: [swatch('rgb(255,61,0)', 'prediction \u2265 threshold')],
    error: [swatch('rgb(0,200,83)', 'true positive'), swatch('rgb(255,23,68)', 'false positive'),
            swatch('rgb(41,121,255)', 'false negative')],
    probability: [swatch('rgb(255,61,0)', 'opacity = probability')],
    none: [],
  };
  updateLegend();

  ui.run.addEventListener('change', () => { state.run = ui.run.value; onRunChanged(); });
  ui.tag.addEventListener('change', () => { state.tag = ui.tag.value; loadSteps(); });
  ui.compare.addEventListener('change', () => { state.compareRun = ui.compare.value; loadData(); });
  let stepTimer = null;
  ui.step.addEventListener('input', () => {
    state.stepIndex = Number(ui.step.value);
    updateStepLabel();
    clearTimeout(stepTimer);
    stepTimer = setTimeout(loadData, 150);
  });
  ui.overlay.addEventListener('change', () => {
    state.overlay = ui.overlay.value;
    updateLegend();
    redrawCanvases();
  });
  ui.sort.addEventListener('change', () => { state.sort = ui.sort.value; renderGallery(); });
  ui.filter.addEventListener('input', () => { state.filterText = ui.filter.value; renderGallery(); });
  ui.diceMax.addEventListener('input', () => {
    const v = parseFloat(ui.diceMax.value);
    state.diceMax = Number.isFinite(v) ? v : null;
    renderGallery();
  });
  ui.refresh.addEventListener('click', () => refreshRuns());
}

function updateLegend() {
  ui.legend.replaceChildren(...ui.legendEntries[state.overlay]);
}

function updateStepLabel() {
  const step = state.steps[state.stepIndex];
  ui.stepLabel.textContent = step === undefined ? '\u2013' :
      `step ${step} (${state.stepIndex + 1}/${state.steps.length})`;
}

// ---------------------------------------------------------------- data

async function getJson(route, params) {
  const query = params ? '?' + new URLSearchParams(params) : '';
  const response = await fetch('./' + route + query);
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    body = null;
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `${route}: HTTP ${response.status}`);
  }
  return body;
}

async function refreshRuns() {
  let body;
  try {
    body = await getJson('runs');
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  const changed = JSON.stringify(body.runs) !== JSON.stringify(state.runs);
  state.runs = body.runs;
  if (!state.runs.length) {
    state.run = null;
    fillSelect(ui.run, [], null);
    ui.gallery.replaceChildren();
    setStatus('No segmentation data yet. Log some with lung_keras_tb.summary.SegmentationWriter ' +
              '(or the lung_keras DisplayCallback); this page refreshes itself.');
    return;
  }
  if (!changed && state.data) return;
  const names = state.runs.map((r) => r.run);
  if (!names.includes(state.run)) state.run = names[0];
  fillSelect(ui.run, names.map((n) => [n, n]), state.run);
  await onRunChanged();
}

function tagsOf(runName) {
  const run = state.runs.find((r) => r.run === runName);
  return run ? run.tags.map((t) => t.tag) : [];
}

async function onRunChanged() {
  const tags = tagsOf(state.run);
  if (!tags.includes(state.tag)) state.tag = tags[0] || null;
  fillSelect(ui.tag, tags.map((t) => [t, t]), state.tag);
  const others = state.runs.map((r) => r.run)
      .filter((n) => n !== state.run && tagsOf(n).includes(state.tag));
  if (!others.includes(state.compareRun)) state.compareRun = '';
  fillSelect(ui.compare, [['', '\u2014 none \u2014'], ...others.map((n) => [n, n])],
             state.compareRun);
  await loadSteps();
}

async function loadSteps() {
  if (!state.run || !state.tag) return;
  const followLatest = state.stepIndex >= state.steps.length - 1;
  const previous = state.steps[state.stepIndex];
  let body;
  try {
    body = await getJson('steps', {run: state.run, tag: state.tag});
  } catch (e) {
    setStatus(e.message, true);
    return;
  }
  state.steps = body.steps;
  let index = state.steps.indexOf(previous);
  if (followLatest || index < 0) index = state.steps.length - 1;
  state.stepIndex = Math.max(0, index);
  ui.step.max = String(Math.max(0, state.steps.length - 1));
  ui.step.value = String(state.stepIndex);
  ui.step.disabled = state.steps.length < 2;
  updateStepLabel();
  await loadData();
}

async function loadData() {
  if (!state.run || !state.tag || !state.steps.length) return;
  const requestId = ++state.requestId;
  const step = String(state.steps[state.stepIndex]);
  let data;
  try {
    if (state.compareRun) {
      const body = await getJson('compare',
          {run_a: state.run, run_b: state.compareRun, tag: state.tag, step});
      data = {mode: 'compare', ...body};
    } else {
      const body = await getJson('samples', {run: state.run, tag: state.tag, step});
      data = {mode: 'single', ...body};
    }
  } catch (e) {
    if (requestId === state.requestId) {
      state.data = null;
      ui.gallery.replaceChildren(); // never leave another run's samples under an error
      setStatus(e.message, true);
    }
    return;
  }
  if (requestId !== state.requestId) return; // a newer request superseded this one
  state.data = data;
  renderGallery();
}

// ---------------------------------------------------------------- gallery

function rowsOf(data) {
  if (data.mode === 'single') {
    return data.samples.map((s) => ({
      id: s.id, dice: s.dice, delta: null,
      panes: [{run: data.run, step: data.step, index: s.index, dice: s.dice,
               threshold: data.threshold}],
    }));
  }
  return data.rows.map((r) => ({
    id: r.id, dice: r.dice_a, delta: r.delta,
    panes: [
      {run: data.a.run, step: data.a.step, index: r.index_a, dice: r.dice_a,
       threshold: data.a.threshold},
      {run: data.b.run, step: data.b.step, index: r.index_b, dice: r.dice_b,
       threshold: data.b.threshold},
    ],
  }));
}

function compareNullable(a, b, direction) {
  if (a === null && b === null) return 0;
  if (a === null) return 1; // missing values last in either direction
  if (b === null) return -1;
  return direction * (a - b);
}

function sortRows(rows) {
  const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const sorters = {
    'dice-asc': (a, b) => compareNullable(a.dice, b.dice, 1) || byId(a, b),
    'dice-desc': (a, b) => compareNullable(a.dice, b.dice, -1) || byId(a, b),
    'id': byId,
    'delta-asc': (a, b) => compareNullable(a.delta, b.delta, 1) || byId(a, b),
    'delta-desc': (a, b) => compareNullable(a.delta, b.delta, -1) || byId(a, b),
  };
  return rows.slice().sort(sorters[state.sort] || sorters['dice-asc']);
}

function filterRows(rows) {
  const needle = state.filterText.trim().toLowerCase();
  return rows.filter((r) => {
    if (needle && !r.id.toLowerCase().includes(needle)) return false;
    if (state.diceMax !== null && (r.dice === null || r.dice > state.diceMax)) return false;
    return true;
  });
}

function renderGallery() {
  const data = state.data;
  if (!data) return;
  const all = rowsOf(data);
  const rows = sortRows(filterRows(all));
  const cards = rows.map((row) => buildCard(row, data.mode));
  ui.gallery.replaceChildren(...cards);
  if (data.mode === 'compare') {
    const only = [];
    if (data.only_a.length) only.push(`only in ${data.a.run}: ${data.only_a.join(', ')}`);
    if (data.only_b.length) only.push(`only in ${data.b.run}: ${data.only_b.join(', ')}`);
    if (only.length) ui.gallery.appendChild(el('div', {className: 'seg-only', text: only.join(' \u00b7 ')}));
    const deltas = all.map((r) => r.delta).filter((d) => d !== null);
    const mean = deltas.length ? deltas.reduce((s, d) => s + d, 0) / deltas.length : null;
    setStatus(`${rows.length} of ${all.length} shared samples \u00b7 A: ${data.a.run} (step ${data.a.step})` +
              ` \u00b7 B: ${data.b.run} (step ${data.b.step}) \u00b7 mean Dice change B\u2212A ${formatDelta(mean)}`);
  } else {
    const dices = all.map((r) => r.dice).filter((d) => d !== null);
    const mean = dices.length ? dices.reduce((s, d) => s + d, 0) / dices.length : null;
    setStatus(`${rows.length} of ${all.length} samples \u00b7 run ${data.run} \u00b7 step ${data.step}` +
              ` \u00b7 mean Dice ${formatDice(mean)}`);
  }
  for (const card of cards) drawCard(card);
}

function buildCard(row, mode) {
  const panes = row.panes.map((pane, i) => {
    const canvas = el('canvas', {className: 'seg-canvas'});
    canvas.segPane = pane;
    const children = [];
    if (mode === 'compare') {
      children.push(el('div', {className: 'seg-run-name', text: `${i === 0 ? 'A' : 'B'}: ${pane.run}`}));
    }
    children.push(canvas, el('div', {className: 'seg-dice', text: `Dice ${formatDice(pane.dice)}`}));
    return el('div', {className: 'seg-pane', dataset: {side: i === 0 ? 'a' : 'b', run: pane.run}}, children);
  });
  const children = [el('div', {className: 'seg-id', text: row.id}), el('div', {className: 'seg-panes'}, panes)];
  if (mode === 'compare') {
    const delta = el('div', {className: 'seg-delta', text: `\u0394 Dice (B\u2212A) ${formatDelta(row.delta)}`});
    if (row.delta !== null && row.delta > 0) delta.classList.add('seg-better');
    if (row.delta !== null && row.delta < 0) delta.classList.add('seg-worse');
    children.push(delta);
  }
  const card = el('div', {className: 'seg-card', dataset: {sampleId: row.id}}, children);
  card.addEventListener('click', () => card.classList.toggle('seg-large'));
  return card;
}

function redrawCanvases() {
  for (const card of ui.gallery.querySelectorAll('.seg-card')) drawCard(card);
}

// ---------------------------------------------------------------- overlays

function imageUrl(pane, kind) {
  return './image?' + new URLSearchParams({
    run: pane.run, tag: pane.tag || state.tag, step: String(pane.step), index: String(pane.index), kind,
  });
}

function loadPixels(url) {
  if (!pixelCache.has(url)) {
    pixelCache.set(url, new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => {
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth;
        canvas.height = img.naturalHeight;
        const c = canvas.getContext('2d');
        c.drawImage(img, 0, 0);
        resolve(c.getImageData(0, 0, canvas.width, canvas.height));
      };
      img.onerror = () => {
        pixelCache.delete(url);
        reject(new Error('could not load ' + url));
      };
      img.src = url;
    }));
  }
  return pixelCache.get(url);
}

async function drawCard(card) {
  for (const canvas of card.querySelectorAll('canvas')) {
    await drawCanvas(canvas, canvas.segPane, state.overlay);
  }
}

async function drawCanvas(canvas, pane, mode) {
  try {
    const [image, mask, prediction] = await Promise.all(
        ['image', 'mask', 'prediction'].map((k) => loadPixels(imageUrl(pane, k))));
    const out = compose(image, mask, prediction, mode, pane.threshold);
    canvas.width = out.width;
    canvas.height = out.height;
    canvas.getContext('2d').putImageData(out, 0, 0);
    canvas.dataset.drawn = mode;
  } catch (e) {
    canvas.dataset.drawn = 'failed';
    canvas.title = e.message;
  }
}

function blend(out, i, rgb, alpha) {
  out[i] = Math.round(out[i] * (1 - alpha) + rgb[0] * alpha);
  out[i + 1] = Math.round(out[i + 1] * (1 - alpha) + rgb[1] * alpha);
  out[i + 2] = Math.round(out[i + 2] * (1 - alpha) + rgb[2] * alpha);
}

// Pixels are 8-bit: the mask is 0/255, the prediction is round(255 * p), so
// "p >= threshold" is "value >= 255 * threshold" (exact for threshold 0.5).
export function compose(image, mask, prediction, mode, threshold = 0.5) {
  const w = image.width;
  const h = image.height;
  const out = new ImageData(new Uint8ClampedArray(image.data), w, h);
  const d = out.data;
  const cut = 255 * threshold;
  const m = (i) => mask.data[i] >= 128;
  const p = (i) => prediction.data[i] >= cut;
  const GREEN = [0, 200, 83];
  const RED = [255, 61, 0];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = 4 * (y * w + x);
      d[i + 3] = 255;
      if (mode === 'mask') {
        if (m(i)) blend(d, i, GREEN, 0.45);
      } else if (mode === 'prediction') {
        if (p(i)) blend(d, i, RED, 0.45);
      } else if (mode === 'probability') {
        blend(d, i, RED, 0.7 * prediction.data[i] / 255);
      } else if (mode === 'error') {
        const mi = m(i);
        const pi = p(i);
        if (mi && pi) blend(d, i, GREEN, 0.3);
        else if (pi) blend(d, i, [255, 23, 68], 0.75);
        else if (mi) blend(d, i, [41, 121, 255], 0.75);
      } else if (mode === 'both') {
        if (m(i)) blend(d, i, GREEN, 0.35);
        if (p(i)) {
          const edge = x === 0 || y === 0 || x === w - 1 || y === h - 1 ||
              !p(i - 4) || !p(i + 4) || !p(i - 4 * w) || !p(i + 4 * w);
          if (edge) blend(d, i, RED, 1.0);
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- arms view

function buildArmView() {
  ui.armTag = el('select', {id: 'arm-tag'});
  ui.armA = el('select', {id: 'arm-a'});
  ui.armB = el('select', {id: 'arm-b'});
  ui.armSeed = el('select', {id: 'arm-seed'});
  ui.armSort = el('select', {id: 'arm-sort'});
  fillSelect(ui.armSort, ARM_SORTS, arm.sort);
  ui.armLink = el('a', {id: 'arm-link', target: '_top'});
  ui.armStatus = el('div', {id: 'arm-status', text: 'Loading\u2026'});
  ui.armRows = el('tbody');
  const head = el('tr', {}, [
    el('th', {className: 'arm-id', text: 'Image'}),
    el('th', {text: 'Dice A'}),
    el('th', {text: 'Dice B'}),
    el('th', {text: '\u0394 Dice (B\u2212A)'}),
  ]);
  ui.armTable = el('table', {id: 'arm-table'}, [el('thead', {}, [head]), ui.armRows]);
  ui.armDetail = el('div', {id: 'arm-detail'});
  const controls = el('div', {className: 'seg-controls'}, [
    labelled('Test set (tag)', ui.armTag),
    labelled('Arm A', ui.armA),
    labelled('Arm B', ui.armB),
    labelled('Dice', ui.armSeed),
    labelled('Sort', ui.armSort),
    labelled('Link to this view', ui.armLink),
  ]);
  ui.armTag.addEventListener('change', () => {
    arm.tag = ui.armTag.value;
    fillArmSelectors();
    loadArmData();
  });
  ui.armA.addEventListener('change', () => { arm.a = ui.armA.value; fillSeedSelector(); loadArmData(); });
  ui.armB.addEventListener('change', () => { arm.b = ui.armB.value; fillSeedSelector(); loadArmData(); });
  ui.armSeed.addEventListener('change', () => { arm.seed = ui.armSeed.value; loadArmData(); });
  ui.armSort.addEventListener('change', () => {
    arm.sort = ui.armSort.value;
    renderArmTable();
    writeLinkState();
  });
  return el('div', {id: 'arm-view'}, [
    controls,
    ui.armStatus,
    el('div', {className: 'arm-body'}, [el('div', {className: 'arm-list'}, [ui.armTable]), ui.armDetail]),
  ]);
}

function setView(view) {
  arm.view = view === 'arms' ? 'arms' : 'runs';
  ui.view.value = arm.view;
  ui.runsView.hidden = arm.view !== 'runs';
  ui.armView.hidden = arm.view !== 'arms';
}

function setArmStatus(text, isError = false) {
  ui.armStatus.textContent = text;
  ui.armStatus.classList.toggle('seg-error', isError);
}

async function refreshArms() {
  let body;
  try {
    body = await getJson('arms');
  } catch (e) {
    setArmStatus(e.message, true);
    return;
  }
  const changed = JSON.stringify(body) !== JSON.stringify(arm.listing);
  arm.listing = body;
  if (!changed && arm.data) return;
  applyLinkState();
  fillArmSelectors();
  await loadArmData();
}

function armEntries(tag) {
  return arm.listing ? arm.listing.arms.filter((a) => a.tags.includes(tag)) : [];
}

// An arm named in a link: exact name, else the only arm whose name ends with "/<name>".
function resolveArm(name, names) {
  if (!name) return null;
  if (names.includes(name)) return name;
  const matches = names.filter((n) => n.endsWith('/' + name));
  return matches.length === 1 ? matches[0] : null;
}

function applyLinkState() {
  const link = arm.link;
  if (!link || !arm.listing) return;
  arm.link = null;
  if (link.tag && arm.listing.tags.includes(link.tag)) arm.tag = link.tag;
  const names = armEntries(arm.tag || defaultTag(arm.listing.tags)).map((a) => a.arm);
  arm.a = resolveArm(link.a, names) || arm.a;
  arm.b = resolveArm(link.b, names) || arm.b;
  if (link.seed) arm.seed = link.seed;
  if (link.sort && ARM_SORTS.some(([value]) => value === link.sort)) {
    arm.sort = link.sort;
    ui.armSort.value = arm.sort;
  }
  if (link.image) arm.image = link.image;
}

function defaultTag(tags) {
  return tags.find((t) => /^(test|extra)(\/|$)/.test(t)) || tags[0] || null;
}

function defaultArm(names, word, exclude) {
  const segment = new RegExp(`(^|/)${word}(/|$)`);
  const others = names.filter((n) => n !== exclude);
  return others.find((n) => segment.test(n)) || others.find((n) => n.includes(word)) ||
      others[0] || names[0] || null;
}

function fillArmSelectors() {
  const tags = arm.listing ? arm.listing.tags : [];
  if (!tags.includes(arm.tag)) arm.tag = defaultTag(tags);
  fillSelect(ui.armTag, tags.map((t) => [t, t]), arm.tag);
  const entries = armEntries(arm.tag);
  const names = entries.map((a) => a.arm);
  if (!names.includes(arm.a)) arm.a = defaultArm(names, 'baseline', null);
  if (!names.includes(arm.b)) {
    const twin = arm.a ? arm.a.replace(/(^|\/)baseline(\/|$)/, '$1augmented$2') : null;
    arm.b = twin !== arm.a && names.includes(twin) ? twin : defaultArm(names, 'augmented', arm.a);
  }
  const label = (a) => {
    const n = a.members.filter((m) => m.tags.includes(arm.tag)).length;
    return [a.arm, `${a.arm} (${n} run${n === 1 ? '' : 's'})`];
  };
  fillSelect(ui.armA, entries.map(label), arm.a);
  fillSelect(ui.armB, entries.map(label), arm.b);
  fillSeedSelector();
}

function seedsOf(name) {
  const entry = armEntries(arm.tag).find((a) => a.arm === name);
  if (!entry) return [];
  return entry.members.filter((m) => m.tags.includes(arm.tag) && m.seed !== null).map((m) => m.seed);
}

function fillSeedSelector() {
  const seedsA = seedsOf(arm.a);
  const seedsB = seedsOf(arm.b);
  const common = seedsA.filter((s) => seedsB.includes(s));
  const options = [['mean', 'Seed-averaged (mean over each arm\u2019s seeds)'],
                   ...common.map((s) => [String(s), `Seed ${s}`])];
  if (!options.some(([value]) => value === arm.seed)) arm.seed = 'mean';
  fillSelect(ui.armSeed, options, arm.seed);
}

async function loadArmData() {
  const requestId = ++arm.requestId;
  if (!arm.tag || !arm.a || !arm.b) {
    arm.data = null;
    ui.armRows.replaceChildren();
    ui.armDetail.replaceChildren();
    setArmStatus('No test predictions yet. lung_keras writes them at the end of each training run ' +
                 '(lung_keras.callbacks.log_test_predictions); runs named <arm>-seed<k> form arms.');
    writeLinkState();
    return;
  }
  let body;
  try {
    body = await getJson('arm_compare', {tag: arm.tag, arm_a: arm.a, arm_b: arm.b, seed: arm.seed});
  } catch (e) {
    if (requestId === arm.requestId) {
      arm.data = null;
      ui.armRows.replaceChildren(); // never leave other arms' rows under an error
      ui.armDetail.replaceChildren();
      setArmStatus(e.message, true);
      writeLinkState();
    }
    return;
  }
  if (requestId !== arm.requestId) return;
  arm.data = body;
  renderArmTable();
  writeLinkState();
}

function sortArmRows(rows) {
  const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const abs = (v) => (v === null ? null : Math.abs(v));
  const sorters = {
    'abs': (a, b) => compareNullable(abs(a.delta), abs(b.delta), -1) || byId(a, b),
    'gain': (a, b) => compareNullable(a.delta, b.delta, -1) || byId(a, b),
    'loss': (a, b) => compareNullable(a.delta, b.delta, 1) || byId(a, b),
    'id': byId,
    'dice-a': (a, b) => compareNullable(a.dice_a, b.dice_a, 1) || byId(a, b),
    'dice-b': (a, b) => compareNullable(a.dice_b, b.dice_b, 1) || byId(a, b),
  };
  return rows.slice().sort(sorters[arm.sort] || sorters.abs);
}

function sideText(side, seed) {
  const seeds = side.seeds.filter((s) => s !== null);
  if (seed !== 'mean') return `seed ${seed}`;
  return seeds.length ? `mean of seed${seeds.length === 1 ? '' : 's'} ${seeds.join(', ')}` : 'single run';
}

function renderArmTable() {
  const data = arm.data;
  if (!data) return;
  const rows = sortArmRows(data.rows);
  if (!rows.some((r) => r.id === arm.image)) arm.image = rows.length ? rows[0].id : null;
  ui.armRows.replaceChildren(...rows.map(buildArmRow));
  const deltas = rows.map((r) => r.delta).filter((d) => d !== null);
  const mean = deltas.length ? deltas.reduce((s, d) => s + d, 0) / deltas.length : null;
  const better = deltas.filter((d) => d > 0).length;
  const worse = deltas.filter((d) => d < 0).length;
  const only = [];
  if (data.only_a.length) only.push(`${data.only_a.length} only in A`);
  if (data.only_b.length) only.push(`${data.only_b.length} only in B`);
  setArmStatus(`${rows.length} images of ${data.tag} \u00b7 A: ${data.a.arm} (${sideText(data.a, data.seed)})` +
               ` \u00b7 B: ${data.b.arm} (${sideText(data.b, data.seed)}) \u00b7 mean \u0394 Dice (B\u2212A) ` +
               `${formatDelta(mean)} \u00b7 ${better} better, ${worse} worse` +
               (only.length ? ` \u00b7 ${only.join(', ')}` : ''));
  renderArmDetail();
}

function buildArmRow(row) {
  const delta = el('td', {className: 'arm-delta', text: formatDelta(row.delta)});
  if (row.delta !== null && row.delta > 0) delta.classList.add('seg-better');
  if (row.delta !== null && row.delta < 0) delta.classList.add('seg-worse');
  const tr = el('tr', {dataset: {sampleId: row.id}}, [
    el('td', {className: 'arm-id', text: row.id}),
    el('td', {className: 'arm-dice-a', text: formatDice(row.dice_a), title: `${row.n_a} run(s)`}),
    el('td', {className: 'arm-dice-b', text: formatDice(row.dice_b), title: `${row.n_b} run(s)`}),
    delta,
  ]);
  if (row.id === arm.image) tr.classList.add('arm-selected');
  tr.addEventListener('click', () => selectArmImage(row.id));
  return tr;
}

function selectArmImage(id) {
  arm.image = id;
  for (const tr of ui.armRows.children) tr.classList.toggle('arm-selected', tr.dataset.sampleId === id);
  renderArmDetail();
  writeLinkState();
}

function armPane(data, side, index) {
  if (index === null || index === undefined) return null;
  const display = data[side].display;
  return {run: display.run, step: display.step, index, threshold: display.threshold, tag: data.tag};
}

function renderArmDetail() {
  const data = arm.data;
  const row = data ? data.rows.find((r) => r.id === arm.image) : null;
  if (!row) {
    ui.armDetail.replaceChildren();
    return;
  }
  const paneA = armPane(data, 'a', row.index_a);
  const paneB = armPane(data, 'b', row.index_b);
  const base = paneA || paneB;
  const seedOf = (side) => (data[side].display.seed === null ? '' : ` \u00b7 seed ${data[side].display.seed}`);
  // Three columns: the image and its true mask, then arm A, then arm B (prediction above error map).
  const specs = [
    ['image', 'Image', base, 'none'],
    ['pred-a', `A: prediction${seedOf('a')}`, paneA, 'prediction'],
    ['pred-b', `B: prediction${seedOf('b')}`, paneB, 'prediction'],
    ['mask', 'True mask', base, 'mask'],
    ['error-a', `A: error map${seedOf('a')}`, paneA, 'error'],
    ['error-b', `B: error map${seedOf('b')}`, paneB, 'error'],
  ];
  const canvases = [];
  const panes = specs.map(([kind, label, pane, mode]) => {
    let body;
    if (pane) {
      body = el('canvas', {className: 'arm-canvas', dataset: {kind}});
      canvases.push([body, pane, mode]);
    } else {
      body = el('div', {className: 'arm-missing', dataset: {kind}, text: 'not logged by this arm\u2019s run'});
    }
    return el('div', {className: 'arm-pane'}, [el('div', {className: 'seg-run-name', text: label}), body]);
  });
  const swatch = (color, text) =>
    el('span', {}, [el('span', {className: 'seg-swatch', style: `background:${color}`}), el('span', {text})]);
  const delta = el('span', {className: 'arm-delta', text: `\u0394 Dice (B\u2212A) ${formatDelta(row.delta)}`});
  if (row.delta !== null && row.delta > 0) delta.classList.add('seg-better');
  if (row.delta !== null && row.delta < 0) delta.classList.add('seg-worse');
  ui.armDetail.replaceChildren(
    el('div', {className: 'seg-id', text: row.id}),
    el('div', {className: 'seg-dice'}, [
      el('span', {text: `A: ${data.a.arm} Dice ${formatDice(row.dice_a)} \u00b7 B: ${data.b.arm} Dice ` +
                        `${formatDice(row.dice_b)} \u00b7 `}),
      delta,
    ]),
    el('div', {className: 'arm-panes'}, panes),
    el('div', {className: 'seg-legend'}, [
      swatch('rgb(255,61,0)', 'prediction \u2265 threshold'), swatch('rgb(0,200,83)', 'true positive'),
      swatch('rgb(255,23,68)', 'false positive'), swatch('rgb(41,121,255)', 'false negative'),
    ]),
  );
  for (const [canvas, pane, mode] of canvases) drawCanvas(canvas, pane, mode);
}

// ---------------------------------------------------------------- link state (URL hash)

function hashTargets() {
  const targets = [];
  try {
    if (window.parent !== window && window.parent.location.href) targets.push(window.parent);
  } catch (e) {
    // a cross-origin parent: keep the state in this frame's own hash
  }
  targets.push(window);
  return targets;
}

function readLinkState() {
  const out = {};
  for (const target of hashTargets()) {
    const pairs = target.location.hash.replace(/^#/, '').split('&').filter((p) => p.includes('='));
    const params = new URLSearchParams(pairs.join('&'));
    for (const [key, name] of Object.entries(LINK_KEYS)) {
      if (params.has(name) && !(key in out)) out[key] = params.get(name);
    }
  }
  return out;
}

function writeLinkState() {
  const ours = new Set(Object.values(LINK_KEYS));
  const values = arm.view === 'arms' ?
      {view: 'arms', tag: arm.tag, a: arm.a, b: arm.b, seed: arm.seed, sort: arm.sort, image: arm.image} : {};
  const encoded = Object.entries(values)
      .filter(([, v]) => v !== null && v !== undefined && v !== '')
      .map(([key, v]) => `${LINK_KEYS[key]}=${encodeURIComponent(v)}`);
  const target = hashTargets()[0];
  const kept = target.location.hash.replace(/^#/, '').split('&')
      .filter((p) => p && !ours.has(p.split('=')[0]));
  if (target !== window && !kept.length) kept.push('lung_segmentation');
  const hash = '#' + [...kept, ...encoded].join('&');
  try {
    if (target.location.hash !== hash) target.history.replaceState(target.history.state, '', hash);
  } catch (e) {
    // the link below still shows the state
  }
  const url = target.location.href.split('#')[0] + hash;
  ui.armLink.setAttribute('href', url);
  ui.armLink.textContent = arm.view === 'arms' ? url : '';
}

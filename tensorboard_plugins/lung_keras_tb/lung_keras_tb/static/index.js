// Segmentation dashboard of lung_keras_tb: a plain ES module, no build step.
// TensorBoard loads it inside an iframe whose <base href> is this plugin's route prefix,
// so './runs' etc. resolve to /data/plugin/lung_segmentation/runs.
//
// Security: run, tag and sample names reach the page only through textContent,
// option.value / dataset (attribute values), SVG <title> text and URLSearchParams, never
// parsed as HTML. The CSV download quotes every field and prefixes cells that a spreadsheet
// would run as a formula (= + - @ tab CR) with a single quote.
//
// Two views: "Runs" (one run's gallery per step, or two runs side by side) and "Arms"
// (two arms -- runs grouped across seeds, see lung_keras_tb/arms.py -- paired image by
// image on one test set, with seed-averaged or single-seed Dice).
//
// Display controls (both views' images): window/level (with presets; "auto" stretches each
// image's 1st-99th percentile), overlay opacity, and a probability threshold: at a threshold
// other than the logged one, every Dice shown, sorted, filtered and exported is recomputed
// here from the stored mask and probability PNGs (2|M n P| / (|M| + |P|), 1 when both are
// empty; predictions stored with 16 grey levels give Dice at those levels). Clicking an image
// opens it enlarged: rendered at screen resolution from the stored PNGs (bilinear image and
// probability, outlines one screen pixel wide), zoom 1-8x, drag to pan. Each card carries a
// sparkline of the sample's logged Dice over the run's steps (./trend); "changed most" sorts by
// |Dice(step) - Dice(from step)|. Colours follow TensorBoard's dark mode.
//
// One file, about 1,650 lines: TensorBoard loads a single ES module and this package has no build
// step. Sections, in order: page and controls, theme, data, Dice at a threshold, gallery, CSV,
// overlays (compose / paint / window-level, pure functions of pixels), enlarged view, arms view,
// link state.
//
// Link format (the view's state lives in TensorBoard's URL hash, after the tab name;
// lung_keras_tb/links.py writes the Arms format):
//   http://<host>:<port>/#lung_segmentation&seg_view=arms&seg_tag=<tag>&seg_a=<arm A>
//       &seg_b=<arm B>&seg_seed=mean|<k>&seg_sort=abs|gain|loss|id|dice-a|dice-b&seg_image=<id>
//   http://<host>:<port>/#lung_segmentation&seg_run=<run>&seg_tag=<tag>&seg_cmp=<run B>
//       &seg_step=<step>&seg_overlay=<overlay>&seg_sort=<sort>&seg_filter=<text>&seg_dmax=<x>
//       &seg_thr=<t>&seg_wl=<preset>|<level>,<window>&seg_op=<0-100>&seg_from=<step>
//       &seg_image=<enlarged sample id>&seg_side=a|b&seg_zoom=<1-8>
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
  ['change', 'Changed most since the \u201cfrom\u201d step'],
];
const ARM_SORTS = [
  ['abs', 'Largest |\u0394 Dice| first'],
  ['gain', 'Biggest gain (B\u2212A) first'],
  ['loss', 'Biggest loss (B\u2212A) first'],
  ['id', 'Sample id'],
  ['dice-a', 'Dice A, worst first'],
  ['dice-b', 'Dice B, worst first'],
];
// Window/level presets on the stored 8-bit grey levels, as fractions of full range.
const WL_PRESETS = [
  ['full', 'Full range', 0.5, 1.0],
  ['auto', 'Auto (1st\u201399th percentile)', null, null],
  ['lung', 'Lung fields (dark)', 0.35, 0.6],
  ['dense', 'Dense tissue (bright)', 0.7, 0.5],
  ['custom', 'Custom (sliders)', null, null],
];
const LINK_KEYS = {view: 'seg_view', tag: 'seg_tag', a: 'seg_a', b: 'seg_b', seed: 'seg_seed',
                   sort: 'seg_sort', image: 'seg_image', run: 'seg_run', cmp: 'seg_cmp', step: 'seg_step',
                   overlay: 'seg_overlay', filter: 'seg_filter', dmax: 'seg_dmax', thr: 'seg_thr',
                   wl: 'seg_wl', op: 'seg_op', from: 'seg_from', side: 'seg_side', zoom: 'seg_zoom'};
const AUTO_REFRESH_MS = 30000;
const VIEWER_MAX_PX = 720;

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
  threshold: null, // null: each run's logged threshold (the logged Dice); else recomputed at this value
  wl: {preset: 'full', level: 0.5, width: 1.0},
  opacity: 1.0,
  fromStep: null, // step the "changed most" sort and the change column compare against
  trends: new Map(), // run -> response of ./trend for state.tag
  viewer: null, // {id, side, zoom, cx, cy}
  data: null, // {mode: 'single'|'compare', ...response}
  requestId: 0,
  link: null, // runs-view state read from the URL, applied once the runs are known
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
  const link = readLinkState();
  arm.link = link;
  applyRunsLinkControls(link);
  watchTheme();
  if (link.view === 'arms') setView('arms');
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

function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'text') node.textContent = value;
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

function mean(values) {
  const v = values.filter((d) => d !== null && d !== undefined);
  return v.length ? v.reduce((s, d) => s + d, 0) / v.length : null;
}

// ---------------------------------------------------------------- page

const CSS = `
  body { --fg: #212121; --fg2: #616161; --fg3: #424242; --bg: #fff; --card: #fafafa; --line: #ddd;
    --line2: #eee; --head: #f5f5f5; --hover: #f1f8e9; --sel: #e3f2fd; --good: #2e7d32; --bad: #c62828;
    --missing: #eee; --link: #1565c0;
    font-family: Roboto, Arial, sans-serif; font-size: 13px; margin: 0; color: var(--fg); background: var(--bg); }
  body.seg-dark { --fg: #e0e0e0; --fg2: #a0a0a0; --fg3: #c8c8c8; --bg: #303030; --card: #3a3a3a; --line: #555;
    --line2: #464646; --head: #424242; --hover: #3d4a35; --sel: #2c4259; --good: #81c784; --bad: #ef9a9a;
    --missing: #484848; --link: #90caf9; color-scheme: dark; }
  a { color: var(--link); }
  #seg-root { padding: 12px 16px; }
  .seg-controls { display: flex; flex-wrap: wrap; gap: 10px 18px; align-items: flex-end;
    padding-bottom: 10px; border-bottom: 1px solid var(--line); }
  .seg-control { display: flex; flex-direction: column; gap: 3px; }
  .seg-control > span { font-size: 11px; color: var(--fg2); text-transform: uppercase; letter-spacing: .03em; }
  .seg-row { display: flex; gap: 6px; align-items: center; }
  select, input[type=search], input[type=number], button { font-size: 13px; padding: 3px 4px; }
  select { max-width: 360px; text-overflow: ellipsis; }
  input[type=number] { width: 70px; }
  input[type=range] { width: 110px; }
  #seg-step { width: 200px; }
  .seg-value { font-variant-numeric: tabular-nums; min-width: 3.5em; color: var(--fg3); }
  .seg-display { padding-top: 8px; }
  .seg-legend { display: flex; gap: 14px; margin: 8px 0 4px; font-size: 12px; color: var(--fg3); }
  .seg-swatch { display: inline-block; width: 11px; height: 11px; margin-right: 4px; vertical-align: -1px; }
  #seg-status { margin: 6px 0 10px; color: var(--fg3); overflow-wrap: anywhere; }
  #seg-status.seg-error { color: var(--bad); font-weight: 500; }
  #seg-link, #arm-link { font-size: 12px; overflow-wrap: anywhere; max-width: 420px; }
  #seg-gallery { display: flex; flex-wrap: wrap; gap: 12px; }
  .seg-card { border: 1px solid var(--line); border-radius: 4px; padding: 6px; background: var(--card);
    max-width: 420px; }
  .seg-card .seg-id { font-weight: 500; margin-bottom: 4px; overflow-wrap: anywhere; }
  .seg-panes { display: flex; gap: 6px; }
  .seg-pane { display: flex; flex-direction: column; align-items: center; gap: 2px; min-width: 0; }
  .seg-pane canvas { width: 192px; height: 192px; background: #000; cursor: zoom-in; }
  .seg-run-name { font-size: 11px; color: var(--fg2); max-width: 192px; white-space: nowrap; overflow: hidden;
    text-overflow: ellipsis; }
  .seg-dice { font-variant-numeric: tabular-nums; }
  .seg-spark { display: block; }
  .seg-spark polyline { fill: none; stroke: var(--fg2); stroke-width: 1.2; }
  .seg-spark .seg-spark-now { fill: #ff3d00; }
  .seg-spark .seg-spark-from { fill: none; stroke: #2979ff; stroke-width: 1.2; }
  .seg-change { font-size: 12px; font-variant-numeric: tabular-nums; color: var(--fg3); }
  .seg-delta { margin-top: 4px; font-weight: 500; font-variant-numeric: tabular-nums; }
  .seg-delta.seg-better, .seg-change.seg-better { color: var(--good); }
  .seg-delta.seg-worse, .seg-change.seg-worse { color: var(--bad); }
  .seg-only { margin-top: 8px; color: var(--fg2); }
  .seg-view-bar { display: flex; gap: 18px; align-items: flex-end; margin-bottom: 10px; }
  #seg-viewer { position: fixed; inset: 0; background: rgba(0,0,0,.6); display: flex; align-items: center;
    justify-content: center; z-index: 10; }
  #seg-viewer[hidden] { display: none; }
  .seg-viewer-box { background: var(--bg); color: var(--fg); border-radius: 6px; padding: 10px 12px;
    display: flex; flex-direction: column; gap: 6px; max-width: calc(100vw - 24px); }
  .seg-viewer-head { display: flex; gap: 14px; align-items: center; flex-wrap: wrap; }
  #seg-viewer-title { font-weight: 500; overflow-wrap: anywhere; max-width: 480px; }
  #seg-viewer-info { color: var(--fg2); font-size: 12px; overflow-wrap: anywhere; }
  #seg-viewer-canvas { background: #000; cursor: grab; touch-action: none; }
  #arm-status { margin: 6px 0 10px; color: var(--fg3); }
  #arm-status.seg-error { color: var(--bad); font-weight: 500; }
  .arm-body { display: flex; gap: 16px; align-items: flex-start; }
  .arm-list { max-height: 80vh; overflow-y: auto; border: 1px solid var(--line); }
  #arm-table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
  #arm-table th, #arm-table td { padding: 3px 8px; border-bottom: 1px solid var(--line2); text-align: right; }
  #arm-table th { position: sticky; top: 0; background: var(--head); font-weight: 500; }
  #arm-table td.arm-id, #arm-table th.arm-id { text-align: left; max-width: 260px; overflow-wrap: anywhere; }
  #arm-table tbody tr { cursor: pointer; }
  #arm-table tbody tr:hover { background: var(--hover); }
  #arm-table tbody tr.arm-selected { background: var(--sel); }
  .arm-delta.seg-better { color: var(--good); }
  .arm-delta.seg-worse { color: var(--bad); }
  #arm-detail { display: flex; flex-direction: column; gap: 6px; }
  #arm-detail .seg-id { font-weight: 500; overflow-wrap: anywhere; max-width: 900px; }
  .arm-panes { display: grid; grid-template-columns: repeat(3, max-content); gap: 8px; }
  .arm-pane { display: flex; flex-direction: column; align-items: center; gap: 2px; }
  .arm-pane canvas { width: 192px; height: 192px; background: #000; }
  .arm-pane .seg-run-name { max-width: 192px; }
  .arm-missing { width: 192px; height: 192px; display: flex; align-items: center; justify-content: center;
    text-align: center; background: var(--missing); color: var(--fg2); font-size: 12px; }
`;

function range(id, min, max, step, value) {
  return el('input', {id, type: 'range', min: String(min), max: String(max), step: String(step),
                      value: String(value)});
}

function buildDisplayControls() {
  ui.threshold = range('seg-threshold', 0.05, 0.95, 0.05, 0.5);
  ui.thresholdLabel = el('span', {id: 'seg-threshold-label', className: 'seg-value', text: 'logged'});
  ui.wlPreset = el('select', {id: 'seg-wl-preset'});
  fillSelect(ui.wlPreset, WL_PRESETS.map(([v, t]) => [v, t]), state.wl.preset);
  ui.level = range('seg-level', 0, 1, 0.01, 0.5);
  ui.window = range('seg-window', 0.05, 1, 0.01, 1);
  ui.wlLabel = el('span', {id: 'seg-wl-label', className: 'seg-value'});
  ui.opacity = range('seg-opacity', 0, 100, 5, 100);
  ui.opacityLabel = el('span', {id: 'seg-opacity-label', className: 'seg-value', text: '100%'});
  ui.csv = el('a', {id: 'seg-csv', text: 'Download CSV', download: 'segmentation.csv', href: '#'});
  ui.link = el('a', {id: 'seg-link', target: '_top'});
  const thresholdTimer = {id: null};
  ui.threshold.addEventListener('input', () => {
    state.threshold = Number(ui.threshold.value);
    updateThresholdLabel();
    clearTimeout(thresholdTimer.id);
    thresholdTimer.id = setTimeout(() => rerender(), 120);
  });
  ui.wlPreset.addEventListener('change', () => { setWindowPreset(ui.wlPreset.value); redrawAll(); });
  for (const slider of [ui.level, ui.window]) {
    slider.addEventListener('input', () => {
      state.wl = {preset: 'custom', level: Number(ui.level.value), width: Number(ui.window.value)};
      syncWindowControls();
      redrawAll();
    });
  }
  ui.opacity.addEventListener('input', () => {
    state.opacity = Number(ui.opacity.value) / 100;
    ui.opacityLabel.textContent = `${ui.opacity.value}%`;
    redrawAll();
  });
  syncWindowControls();
  return el('div', {className: 'seg-controls seg-display'}, [
    labelled('Threshold', el('div', {className: 'seg-row'}, [ui.threshold, ui.thresholdLabel])),
    labelled('Window preset', ui.wlPreset),
    labelled('Level', el('div', {className: 'seg-row'}, [ui.level])),
    labelled('Window', el('div', {className: 'seg-row'}, [ui.window, ui.wlLabel])),
    labelled('Overlay opacity', el('div', {className: 'seg-row'}, [ui.opacity, ui.opacityLabel])),
    labelled('Table', ui.csv),
    labelled('Link to this view', ui.link),
  ]);
}

function setWindowPreset(preset) {
  const entry = WL_PRESETS.find(([v]) => v === preset) || WL_PRESETS[0];
  state.wl = {preset: entry[0], level: entry[2] ?? state.wl.level, width: entry[3] ?? state.wl.width};
  syncWindowControls();
}

function syncWindowControls() {
  ui.wlPreset.value = state.wl.preset;
  ui.level.value = String(state.wl.level);
  ui.window.value = String(state.wl.width);
  const auto = state.wl.preset === 'auto';
  ui.wlLabel.textContent = auto ? 'per image' :
      `L ${state.wl.level.toFixed(2)} \u00b7 W ${state.wl.width.toFixed(2)}`;
}

function updateThresholdLabel() {
  const logged = loggedThreshold();
  const t = state.threshold;
  if (t === null || (logged !== null && Math.abs(t - logged) < 1e-9)) {
    ui.thresholdLabel.textContent = `${(logged ?? 0.5).toFixed(2)} (logged)`;
  } else {
    ui.thresholdLabel.textContent = `${t.toFixed(2)} (Dice recomputed)`;
  }
  ui.threshold.value = String(t ?? logged ?? 0.5);
}

function loggedThreshold() {
  const data = state.data;
  if (!data) return null;
  return data.mode === 'single' ? data.threshold : data.a.threshold;
}

// The threshold the overlays of `pane` use: the slider's, else the pane's logged one.
function thresholdOf(pane) {
  return state.threshold === null ? pane.threshold : state.threshold;
}

function buildPage() {
  document.head.appendChild(el('style', {text: CSS}));
  ui.run = el('select', {id: 'seg-run'});
  ui.tag = el('select', {id: 'seg-tag'});
  ui.compare = el('select', {id: 'seg-compare'});
  ui.step = el('input', {id: 'seg-step', type: 'range', min: '0', max: '0', value: '0', step: '1'});
  ui.stepLabel = el('span', {id: 'seg-step-label', text: '\u2013'});
  ui.overlay = el('select', {id: 'seg-overlay'});
  ui.sort = el('select', {id: 'seg-sort'});
  ui.from = el('select', {id: 'seg-from'});
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
  fillSelect(ui.from, [['', '\u2014 none \u2014']], '');

  const stepBox = el('div', {className: 'seg-step-box'}, [ui.step, ui.stepLabel]);
  const controls = el('div', {className: 'seg-controls'}, [
    labelled('Run', ui.run),
    labelled('Tag', ui.tag),
    labelled('Compare with run', ui.compare),
    labelled('Step', stepBox),
    labelled('Overlay', ui.overlay),
    labelled('Sort', ui.sort),
    labelled('Change from step', ui.from),
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
  ui.runsView = el('div', {id: 'seg-runs-view'}, [controls, buildDisplayControls(), ui.legend, ui.status,
                                                   ui.gallery]);
  ui.armView = buildArmView();
  ui.armView.hidden = true;
  ui.viewer = buildViewer();
  document.body.appendChild(
    el('div', {id: 'seg-root'}, [
      el('div', {className: 'seg-view-bar'}, [labelled('View', ui.view)]),
      ui.runsView, ui.armView, ui.viewer]));
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
  ui.tag.addEventListener('change', () => { state.tag = ui.tag.value; state.trends.clear(); loadSteps(); });
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
    redrawAll();
  });
  ui.sort.addEventListener('change', () => {
    state.sort = ui.sort.value;
    if (state.sort === 'change' && state.fromStep === null && state.steps.length > 1) {
      state.fromStep = state.steps[0];
      fillFromSelector();
    }
    renderGallery();
  });
  ui.from.addEventListener('change', () => {
    state.fromStep = ui.from.value === '' ? null : Number(ui.from.value);
    renderGallery();
  });
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

function fillFromSelector() {
  const steps = state.steps.map((s) => [String(s), `step ${s}`]);
  if (state.fromStep !== null && !state.steps.includes(state.fromStep)) state.fromStep = null;
  fillSelect(ui.from, [['', '\u2014 none \u2014'], ...steps], state.fromStep === null ? '' : String(state.fromStep));
}

// ---------------------------------------------------------------- theme

// TensorBoard toggles class "dark-mode" on its own <body> (following the browser unless the user
// overrides it); a frame that cannot see its parent follows the browser's colour scheme.
function parentBody() {
  try {
    if (window.parent !== window && window.parent.document && window.parent.document.body) {
      return window.parent.document.body;
    }
  } catch (e) {
    // cross-origin parent
  }
  return null;
}

function applyTheme() {
  const body = parentBody();
  const dark = body ? body.classList.contains('dark-mode') :
      Boolean(window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches);
  document.body.classList.toggle('seg-dark', dark);
}

function watchTheme() {
  applyTheme();
  const body = parentBody();
  if (body) new MutationObserver(applyTheme).observe(body, {attributes: true, attributeFilter: ['class']});
  if (window.matchMedia) {
    const query = window.matchMedia('(prefers-color-scheme: dark)');
    if (query.addEventListener) query.addEventListener('change', applyTheme);
  }
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
  if (changed) state.trends.clear();
  const names = state.runs.map((r) => r.run);
  const link = state.link;
  if (link && link.run && names.includes(link.run)) state.run = link.run;
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
  const link = state.link;
  if (link && link.tag && tags.includes(link.tag)) state.tag = link.tag;
  if (!tags.includes(state.tag)) state.tag = tags[0] || null;
  fillSelect(ui.tag, tags.map((t) => [t, t]), state.tag);
  const others = state.runs.map((r) => r.run)
      .filter((n) => n !== state.run && tagsOf(n).includes(state.tag));
  if (link && link.cmp && others.includes(link.cmp)) state.compareRun = link.cmp;
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
  const link = state.link;
  if (link) {
    const wanted = state.steps.indexOf(Number(link.step));
    if (link.step !== undefined && wanted >= 0) index = wanted;
    if (link.from !== undefined && state.steps.includes(Number(link.from))) state.fromStep = Number(link.from);
  }
  state.stepIndex = Math.max(0, index);
  ui.step.max = String(Math.max(0, state.steps.length - 1));
  ui.step.value = String(state.stepIndex);
  ui.step.disabled = state.steps.length < 2;
  updateStepLabel();
  fillFromSelector();
  await loadData();
}

async function loadTrend(run) {
  const key = `${run}\u0000${state.tag}`;
  if (!state.trends.has(key)) {
    state.trends.set(key, getJson('trend', {run, tag: state.tag}).catch(() => null));
  }
  return state.trends.get(key);
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
    const runs = data.mode === 'single' ? [data.run] : [data.a.run, data.b.run];
    data.trends = await Promise.all(runs.map(loadTrend));
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
  updateThresholdLabel();
  await rerender(requestId);
}

// Recomputes Dice when the threshold differs from the logged one, then renders the gallery.
async function rerender(requestId = state.requestId) {
  const data = state.data;
  if (!data) return;
  if (state.threshold !== null) {
    setStatus(`Recomputing Dice at threshold ${state.threshold.toFixed(2)}\u2026`);
    await recomputeDice(data);
    if (requestId !== state.requestId || data !== state.data) return;
  }
  updateThresholdLabel();
  const link = state.link;
  state.link = null;
  renderGallery();
  if (link && link.image) openViewer(link.image, link.side === 'b' ? 'b' : 'a', Number(link.zoom) || 1);
}

// ---------------------------------------------------------------- Dice at a threshold

export function diceAt(mask, prediction, threshold) {
  const cut = 255 * threshold;
  let inter = 0;
  let m = 0;
  let p = 0;
  for (let i = 0; i < mask.data.length; i += 4) {
    const mi = mask.data[i] >= 128;
    const pi = prediction.data[i] >= cut;
    if (mi) m++;
    if (pi) p++;
    if (mi && pi) inter++;
  }
  return m + p === 0 ? 1.0 : (2 * inter) / (m + p);
}

async function recomputeDice(data) {
  const t = state.threshold;
  const panes = rowsOf(data, true).flatMap((r) => r.panes);
  await Promise.all(panes.map(async (pane) => {
    const key = `${pane.run}\u0000${pane.step}\u0000${pane.index}\u0000${t}`;
    if (!data.recomputed) data.recomputed = new Map();
    if (data.recomputed.has(key)) return;
    try {
      const [mask, prediction] = await Promise.all(
          ['mask', 'prediction'].map((k) => loadPixels(imageUrl(pane, k))));
      data.recomputed.set(key, diceAt(mask, prediction, t));
    } catch (e) {
      data.recomputed.set(key, null);
    }
  }));
}

function shownDice(data, pane) {
  if (state.threshold === null || Math.abs(state.threshold - pane.threshold) < 1e-9) return pane.dice;
  const key = `${pane.run}\u0000${pane.step}\u0000${pane.index}\u0000${state.threshold}`;
  return data.recomputed && data.recomputed.has(key) ? data.recomputed.get(key) : null;
}

// ---------------------------------------------------------------- gallery

function trendOf(trend, id) {
  if (!trend) return null;
  const sample = trend.samples.find((s) => s.id === id);
  return sample ? {steps: trend.steps, dice: sample.dice} : null;
}

function loggedAt(trend, step) {
  if (!trend || step === null) return null;
  const i = trend.steps.indexOf(step);
  return i < 0 ? null : trend.dice[i];
}

function rowsOf(data, raw = false) {
  let rows;
  if (data.mode === 'single') {
    rows = data.samples.map((s) => ({
      id: s.id,
      panes: [{run: data.run, step: data.step, index: s.index, dice: s.dice, threshold: data.threshold,
               trend: trendOf(data.trends && data.trends[0], s.id)}],
    }));
  } else {
    rows = data.rows.map((r) => ({
      id: r.id,
      panes: [
        {run: data.a.run, step: data.a.step, index: r.index_a, dice: r.dice_a, threshold: data.a.threshold,
         trend: trendOf(data.trends && data.trends[0], r.id)},
        {run: data.b.run, step: data.b.step, index: r.index_b, dice: r.dice_b, threshold: data.b.threshold,
         trend: trendOf(data.trends && data.trends[1], r.id)},
      ],
    }));
  }
  if (raw) return rows;
  for (const row of rows) {
    for (const pane of row.panes) pane.shown = shownDice(data, pane);
    row.dice = row.panes[0].shown;
    row.delta = data.mode === 'compare' && row.panes[0].shown !== null && row.panes[1].shown !== null ?
        row.panes[1].shown - row.panes[0].shown : null;
    // The change since the "from" step is on logged Dice (the trend holds logged values).
    const first = row.panes[0];
    const now = loggedAt(first.trend, first.step);
    const before = loggedAt(first.trend, state.fromStep);
    row.change = now !== null && before !== null ? now - before : null;
  }
  return rows;
}

function compareNullable(a, b, direction) {
  if (a === null && b === null) return 0;
  if (a === null) return 1; // missing values last in either direction
  if (b === null) return -1;
  return direction * (a - b);
}

function sortRows(rows) {
  const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const abs = (v) => (v === null ? null : Math.abs(v));
  const sorters = {
    'dice-asc': (a, b) => compareNullable(a.dice, b.dice, 1) || byId(a, b),
    'dice-desc': (a, b) => compareNullable(a.dice, b.dice, -1) || byId(a, b),
    'id': byId,
    'delta-asc': (a, b) => compareNullable(a.delta, b.delta, 1) || byId(a, b),
    'delta-desc': (a, b) => compareNullable(a.delta, b.delta, -1) || byId(a, b),
    'change': (a, b) => compareNullable(abs(a.change), abs(b.change), -1) || byId(a, b),
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

function thresholdNote(data) {
  if (state.threshold === null) return '';
  const logged = data.mode === 'single' ? [data.threshold] : [data.a.threshold, data.b.threshold];
  if (logged.every((t) => Math.abs(t - state.threshold) < 1e-9)) return '';
  return ` \u00b7 Dice at threshold ${state.threshold.toFixed(2)} (recomputed)`;
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
    setStatus(`${rows.length} of ${all.length} shared samples \u00b7 A: ${data.a.run} (step ${data.a.step})` +
              ` \u00b7 B: ${data.b.run} (step ${data.b.step}) \u00b7 mean Dice change B\u2212A ` +
              `${formatDelta(mean(all.map((r) => r.delta)))}${thresholdNote(data)}`);
  } else {
    setStatus(`${rows.length} of ${all.length} samples \u00b7 run ${data.run} \u00b7 step ${data.step}` +
              ` \u00b7 mean Dice ${formatDice(mean(all.map((r) => r.dice)))}${thresholdNote(data)}`);
  }
  ui.csv.setAttribute('href', 'data:text/csv;charset=utf-8,' + encodeURIComponent(csvText(rows, data)));
  ui.csv.setAttribute('download', csvName(data));
  for (const card of cards) drawCard(card);
  if (state.viewer) drawViewer(); // an auto-refresh shows the enlarged sample's new data too
  writeLinkState();
}

function sparkline(trend, step) {
  const W = 120;
  const H = 26;
  const n = trend.steps.length;
  const x = (i) => (n === 1 ? W / 2 : 3 + (i * (W - 6)) / (n - 1));
  const y = (v) => H - 3 - v * (H - 6);
  const points = [];
  trend.dice.forEach((v, i) => { if (v !== null) points.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`); });
  const children = [
    svg('title', {text: 'Dice by step: ' + trend.steps.map((s, i) => `${s}: ${formatDice(trend.dice[i])}`)
        .join(', ')}),
    svg('polyline', {points: points.join(' ')}),
  ];
  const from = trend.steps.indexOf(state.fromStep);
  if (from >= 0 && trend.dice[from] !== null) {
    children.push(svg('circle', {class: 'seg-spark-from', cx: x(from), cy: y(trend.dice[from]), r: 3}));
  }
  const now = trend.steps.indexOf(step);
  if (now >= 0 && trend.dice[now] !== null) {
    children.push(svg('circle', {class: 'seg-spark-now', cx: x(now), cy: y(trend.dice[now]), r: 2.5}));
  }
  return svg('svg', {class: 'seg-spark', width: W, height: H, viewBox: `0 0 ${W} ${H}`,
                     'data-points': String(points.length)}, children);
}

function buildCard(row, mode) {
  const panes = row.panes.map((pane, i) => {
    const side = i === 0 ? 'a' : 'b';
    const canvas = el('canvas', {className: 'seg-canvas', title: 'Click to enlarge'});
    canvas.segPane = pane;
    canvas.addEventListener('click', () => openViewer(row.id, side, 1));
    const children = [];
    if (mode === 'compare') {
      const name = `${side.toUpperCase()}: ${pane.run}`;
      children.push(el('div', {className: 'seg-run-name', text: name, title: name}));
    }
    const note = state.threshold !== null && Math.abs(state.threshold - pane.threshold) > 1e-9 ?
        ` @ ${state.threshold.toFixed(2)}` : '';
    children.push(canvas, el('div', {className: 'seg-dice', text: `Dice ${formatDice(pane.shown)}${note}`}));
    if (pane.trend && pane.trend.steps.length > 1) children.push(sparkline(pane.trend, pane.step));
    return el('div', {className: 'seg-pane', dataset: {side, run: pane.run}}, children);
  });
  const children = [el('div', {className: 'seg-id', text: row.id}), el('div', {className: 'seg-panes'}, panes)];
  if (state.fromStep !== null && state.fromStep !== row.panes[0].step) {
    const change = el('div', {className: 'seg-change',
                              text: `since step ${state.fromStep}: ${formatDelta(row.change)}`});
    if (row.change !== null && row.change > 0) change.classList.add('seg-better');
    if (row.change !== null && row.change < 0) change.classList.add('seg-worse');
    children.push(change);
  }
  if (mode === 'compare') {
    const delta = el('div', {className: 'seg-delta', text: `\u0394 Dice (B\u2212A) ${formatDelta(row.delta)}`});
    if (row.delta !== null && row.delta > 0) delta.classList.add('seg-better');
    if (row.delta !== null && row.delta < 0) delta.classList.add('seg-worse');
    children.push(delta);
  }
  return el('div', {className: 'seg-card', dataset: {sampleId: row.id}}, children);
}

function redrawAll() {
  for (const card of ui.gallery.querySelectorAll('.seg-card')) drawCard(card);
  if (arm.data) renderArmDetail();
  if (state.viewer) drawViewer();
  writeLinkState();
}

// ---------------------------------------------------------------- CSV

// A cell a spreadsheet would evaluate (=, +, -, @, tab, CR first) gets a leading quote;
// every field is quoted.
export function csvCell(value) {
  let text = value === null || value === undefined ? '' : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return `"${text.replace(/"/g, '""')}"`;
}

function csvNumber(value) {
  return value === null || value === undefined ? '' : value.toFixed(6);
}

function csvText(rows, data) {
  const fromSet = state.fromStep !== null;
  let header;
  let lines;
  if (data.mode === 'single') {
    header = ['id', 'run', 'tag', 'step', 'threshold', 'dice'];
    if (fromSet) header.push('from_step', 'dice_change_since_from');
    lines = rows.map((r) => {
      const p = r.panes[0];
      const cells = [r.id, p.run, state.tag, p.step, thresholdOf(p), csvNumber(r.dice)];
      if (fromSet) cells.push(state.fromStep, csvNumber(r.change));
      return cells;
    });
  } else {
    header = ['id', 'tag', 'run_a', 'step_a', 'dice_a', 'run_b', 'step_b', 'dice_b', 'delta_b_minus_a',
              'threshold_a', 'threshold_b'];
    lines = rows.map((r) => {
      const [a, b] = r.panes;
      return [r.id, state.tag, a.run, a.step, csvNumber(a.shown), b.run, b.step, csvNumber(b.shown),
              csvNumber(r.delta), thresholdOf(a), thresholdOf(b)];
    });
  }
  return [header, ...lines].map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

function csvName(data) {
  const safe = (s) => String(s).replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60);
  return data.mode === 'single' ? `dice_${safe(data.run)}_step${data.step}.csv` :
      `dice_${safe(data.a.run)}_vs_${safe(data.b.run)}.csv`;
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

function displayOptions(pane) {
  return {threshold: thresholdOf(pane), wl: state.wl, opacity: state.opacity};
}

async function drawCanvas(canvas, pane, mode) {
  try {
    const [image, mask, prediction] = await Promise.all(
        ['image', 'mask', 'prediction'].map((k) => loadPixels(imageUrl(pane, k))));
    const out = compose(image, mask, prediction, mode, displayOptions(pane));
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

// 256-entry lookup table of a window/level: grey g maps to (g/255 - (level - width/2)) / width.
// The "auto" preset takes the level and width of this image's 1st-99th percentile.
export function windowTable(image, wl) {
  let level = wl.level;
  let width = wl.width;
  if (wl.preset === 'auto') {
    const hist = new Uint32Array(256);
    for (let i = 0; i < image.data.length; i += 4) hist[image.data[i]]++;
    const n = image.data.length / 4;
    let lo = 0;
    let hi = 255;
    let seen = 0;
    for (let g = 0; g < 256; g++) { seen += hist[g]; if (seen >= 0.01 * n) { lo = g; break; } }
    seen = 0;
    for (let g = 255; g >= 0; g--) { seen += hist[g]; if (seen >= 0.01 * n) { hi = g; break; } }
    level = (lo + hi) / 2 / 255;
    width = Math.max(1, hi - lo) / 255;
  }
  const table = new Uint8ClampedArray(256);
  for (let g = 0; g < 256; g++) table[g] = Math.round(255 * ((g / 255 - (level - width / 2)) / width));
  return table;
}

const GREEN = [0, 200, 83];
const RED = [255, 61, 0];
const FALSE_POSITIVE = [255, 23, 68];
const FALSE_NEGATIVE = [41, 121, 255];

// Paints one overlay on `d` (RGBA, already windowed) of size w x h, where m(k) / p(k) say whether
// pixel k is true mask / predicted, prob(k) is the probability in 0..255; `edge` is the outline
// width in pixels. Every overlay's alpha is scaled by `opacity`.
function paint(d, w, h, m, p, prob, mode, opacity, edge = 1) {
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const k = y * w + x;
      const i = 4 * k;
      d[i + 3] = 255;
      if (mode === 'mask') {
        if (m(k)) blend(d, i, GREEN, 0.45 * opacity);
      } else if (mode === 'prediction') {
        if (p(k)) blend(d, i, RED, 0.45 * opacity);
      } else if (mode === 'probability') {
        blend(d, i, RED, 0.7 * opacity * prob(k) / 255);
      } else if (mode === 'error') {
        const mk = m(k);
        const pk = p(k);
        if (mk && pk) blend(d, i, GREEN, 0.3 * opacity);
        else if (pk) blend(d, i, FALSE_POSITIVE, 0.75 * opacity);
        else if (mk) blend(d, i, FALSE_NEGATIVE, 0.75 * opacity);
      } else if (mode === 'both') {
        if (m(k)) blend(d, i, GREEN, 0.35 * opacity);
        if (p(k)) {
          const isEdge = x < edge || y < edge || x >= w - edge || y >= h - edge ||
              !p(k - edge) || !p(k + edge) || !p(k - edge * w) || !p(k + edge * w);
          if (isEdge) blend(d, i, RED, opacity);
        }
      }
    }
  }
}

// Pixels are 8-bit: the mask is 0/255, the prediction is round(255 * p), so
// "p >= threshold" is "value >= 255 * threshold" (exact for threshold 0.5).
// `options`: {threshold, wl: {preset, level, width}, opacity} (a number is the threshold).
export function compose(image, mask, prediction, mode, options = {}) {
  const opts = typeof options === 'number' ? {threshold: options} : options;
  const threshold = opts.threshold ?? 0.5;
  const opacity = opts.opacity ?? 1;
  const w = image.width;
  const h = image.height;
  const out = new ImageData(new Uint8ClampedArray(image.data), w, h);
  const d = out.data;
  if (opts.wl) {
    const table = windowTable(image, opts.wl);
    for (let i = 0; i < d.length; i += 4) {
      d[i] = table[d[i]];
      d[i + 1] = table[d[i + 1]];
      d[i + 2] = table[d[i + 2]];
    }
  }
  const cut = 255 * threshold;
  paint(d, w, h, (k) => mask.data[4 * k] >= 128, (k) => prediction.data[4 * k] >= cut,
        (k) => prediction.data[4 * k], mode, opacity);
  return out;
}

// ---------------------------------------------------------------- enlarged view

function buildViewer() {
  ui.viewerTitle = el('div', {id: 'seg-viewer-title'});
  ui.viewerInfo = el('div', {id: 'seg-viewer-info'});
  ui.zoom = range('seg-zoom', 1, 8, 0.5, 1);
  ui.zoomLabel = el('span', {id: 'seg-zoom-label', className: 'seg-value', text: '1\u00d7'});
  ui.viewerClose = el('button', {id: 'seg-viewer-close', type: 'button', text: 'Close (Esc)'});
  ui.viewerCanvas = el('canvas', {id: 'seg-viewer-canvas'});
  const box = el('div', {className: 'seg-viewer-box'}, [
    el('div', {className: 'seg-viewer-head'}, [
      ui.viewerTitle,
      labelled('Zoom', el('div', {className: 'seg-row'}, [ui.zoom, ui.zoomLabel])),
      ui.viewerClose,
    ]),
    ui.viewerInfo,
    ui.viewerCanvas,
  ]);
  const viewer = el('div', {id: 'seg-viewer'}, [box]);
  viewer.hidden = true;
  viewer.addEventListener('click', (e) => { if (e.target === viewer) closeViewer(); });
  ui.viewerClose.addEventListener('click', closeViewer);
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.viewer) closeViewer(); });
  ui.zoom.addEventListener('input', () => setZoom(Number(ui.zoom.value)));
  ui.viewerCanvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    if (state.viewer) setZoom(state.viewer.zoom * (e.deltaY < 0 ? 1.25 : 0.8));
  }, {passive: false});
  let drag = null;
  ui.viewerCanvas.addEventListener('pointerdown', (e) => {
    if (!state.viewer) return;
    drag = {x: e.clientX, y: e.clientY, cx: state.viewer.cx, cy: state.viewer.cy};
    ui.viewerCanvas.setPointerCapture(e.pointerId);
  });
  ui.viewerCanvas.addEventListener('pointermove', (e) => {
    if (!drag || !state.viewer || !state.viewer.size) return;
    const perCss = state.viewer.size / state.viewer.zoom / ui.viewerCanvas.clientWidth;
    state.viewer.cx = drag.cx - (e.clientX - drag.x) * perCss;
    state.viewer.cy = drag.cy - (e.clientY - drag.y) * perCss;
    drawViewer();
  });
  ui.viewerCanvas.addEventListener('pointerup', () => { drag = null; writeLinkState(); });
  return viewer;
}

function viewerPane() {
  if (!state.viewer || !state.data) return null;
  const row = rowsOf(state.data).find((r) => r.id === state.viewer.id);
  if (!row) return null;
  return {row, pane: row.panes[state.viewer.side === 'b' && row.panes[1] ? 1 : 0]};
}

function openViewer(id, side, zoom) {
  state.viewer = {id, side, zoom: Math.min(8, Math.max(1, zoom || 1)), cx: null, cy: null, size: null};
  if (!viewerPane()) {
    state.viewer = null;
    return;
  }
  ui.viewer.hidden = false;
  ui.zoom.value = String(state.viewer.zoom);
  drawViewer();
  writeLinkState();
}

function closeViewer() {
  state.viewer = null;
  ui.viewer.hidden = true;
  ui.viewerCanvas.removeAttribute('data-drawn');
  writeLinkState();
}

function setZoom(zoom) {
  if (!state.viewer) return;
  state.viewer.zoom = Math.min(8, Math.max(1, Math.round(zoom * 2) / 2));
  ui.zoom.value = String(state.viewer.zoom);
  drawViewer();
  writeLinkState();
}

function bilinear(data, w, h, x, y) {
  const x0 = Math.max(0, Math.min(w - 1, Math.floor(x)));
  const y0 = Math.max(0, Math.min(h - 1, Math.floor(y)));
  const x1 = Math.min(w - 1, x0 + 1);
  const y1 = Math.min(h - 1, y0 + 1);
  const fx = Math.max(0, Math.min(1, x - x0));
  const fy = Math.max(0, Math.min(1, y - y0));
  const a = data[4 * (y0 * w + x0)] * (1 - fx) + data[4 * (y0 * w + x1)] * fx;
  const b = data[4 * (y1 * w + x0)] * (1 - fx) + data[4 * (y1 * w + x1)] * fx;
  return a * (1 - fy) + b * fy;
}

// Renders the enlarged sample at the canvas's device-pixel size: image, mask and probability are
// sampled bilinearly from the stored PNGs (the thresholded prediction and mask get smooth
// boundaries), so nothing is a scaled-up thumbnail; outlines stay one screen pixel wide.
async function drawViewer() {
  const picked = viewerPane();
  if (!picked) return;
  const {row, pane} = picked;
  const v = state.viewer;
  const canvas = ui.viewerCanvas;
  let image;
  let mask;
  let prediction;
  try {
    [image, mask, prediction] = await Promise.all(
        ['image', 'mask', 'prediction'].map((k) => loadPixels(imageUrl(pane, k))));
  } catch (e) {
    canvas.dataset.drawn = 'failed';
    ui.viewerInfo.textContent = e.message;
    return;
  }
  if (state.viewer !== v) return;
  const w = image.width;
  const h = image.height;
  v.size = Math.max(w, h);
  if (v.cx === null) { v.cx = w / 2; v.cy = h / 2; }
  const css = Math.max(200, Math.min(VIEWER_MAX_PX, window.innerWidth - 48, window.innerHeight - 150));
  const dpr = window.devicePixelRatio || 1;
  const n = Math.round(css * dpr);
  canvas.style.width = `${css}px`;
  canvas.style.height = `${css}px`;
  canvas.width = n;
  canvas.height = n;
  // Keep the view inside the image.
  const half = v.size / v.zoom / 2;
  v.cx = Math.min(Math.max(v.cx, Math.min(half, w / 2)), Math.max(w - half, w / 2));
  v.cy = Math.min(Math.max(v.cy, Math.min(half, h / 2)), Math.max(h - half, h / 2));
  const perOut = v.size / v.zoom / n; // source pixels per output pixel
  const x0 = v.cx - (n / 2) * perOut;
  const y0 = v.cy - (n / 2) * perOut;
  const table = windowTable(image, state.wl);
  const out = new ImageData(n, n);
  const d = out.data;
  const inside = new Uint8Array(n * n);
  const maskOn = new Uint8Array(n * n);
  const prob = new Uint8Array(n * n);
  for (let oy = 0; oy < n; oy++) {
    const sy = y0 + (oy + 0.5) * perOut - 0.5;
    for (let ox = 0; ox < n; ox++) {
      const sx = x0 + (ox + 0.5) * perOut - 0.5;
      const k = oy * n + ox;
      if (sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5) continue;
      inside[k] = 1;
      const i = 4 * k;
      const g = table[Math.round(bilinear(image.data, w, h, sx, sy))];
      d[i] = d[i + 1] = d[i + 2] = g;
      maskOn[k] = bilinear(mask.data, w, h, sx, sy) >= 127.5 ? 1 : 0;
      prob[k] = Math.round(bilinear(prediction.data, w, h, sx, sy));
    }
  }
  const cut = 255 * thresholdOf(pane);
  paint(d, n, n, (k) => inside[k] && maskOn[k], (k) => inside[k] && prob[k] >= cut, (k) => prob[k],
        state.overlay, state.opacity, Math.max(1, Math.round(dpr)));
  for (let k = 0; k < n * n; k++) {
    if (!inside[k]) { d[4 * k] = d[4 * k + 1] = d[4 * k + 2] = 0; d[4 * k + 3] = 255; }
  }
  canvas.getContext('2d').putImageData(out, 0, 0);
  ui.viewerTitle.textContent = row.id;
  ui.zoomLabel.textContent = `${v.zoom}\u00d7`;
  ui.viewerInfo.textContent = `${pane.run} \u00b7 step ${pane.step} \u00b7 Dice ${formatDice(pane.shown)} \u00b7 ` +
      `stored ${w}\u00d7${h} px, shown ${n}\u00d7${n} device px (${(n / (v.size / v.zoom)).toFixed(1)} per ` +
      `stored px) \u00b7 drag to pan, wheel to zoom`;
  canvas.dataset.drawn = state.overlay;
  canvas.dataset.zoom = String(v.zoom);
  canvas.dataset.sampleId = row.id;
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
  ui.armCsv = el('a', {id: 'arm-csv', text: 'Download CSV', download: 'arms.csv', href: '#'});
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
    labelled('Table', ui.armCsv),
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
  const header = ['id', 'tag', 'arm_a', 'arm_b', 'seeds', 'dice_a', 'dice_b', 'delta_b_minus_a', 'runs_a', 'runs_b'];
  const lines = rows.map((r) => [r.id, data.tag, data.a.arm, data.b.arm, data.seed === 'mean' ? 'mean' : `seed ${data.seed}`,
                                 csvNumber(r.dice_a), csvNumber(r.dice_b), csvNumber(r.delta), r.n_a, r.n_b]);
  const csv = [header, ...lines].map((cells) => cells.map(csvCell).join(',')).join('\r\n') + '\r\n';
  ui.armCsv.setAttribute('href', 'data:text/csv;charset=utf-8,' + encodeURIComponent(csv));
  const safe = (x) => String(x).replace(/[^A-Za-z0-9_.-]+/g, '_').slice(-40);
  ui.armCsv.setAttribute('download', `dice_${safe(data.a.arm)}_vs_${safe(data.b.arm)}_${safe(data.tag)}.csv`);
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

// Controls of the Runs view that do not depend on the data are set at once; run, tag, comparison,
// steps and the enlarged sample wait in state.link until the runs are known.
function applyRunsLinkControls(link) {
  if (link.view === 'arms') return;
  state.link = link;
  if (link.overlay && OVERLAYS.some(([v]) => v === link.overlay)) {
    state.overlay = link.overlay;
    ui.overlay.value = state.overlay;
    updateLegend();
  }
  if (link.sort && SORTS.some(([v]) => v === link.sort)) {
    state.sort = link.sort;
    ui.sort.value = state.sort;
  }
  if (link.filter) {
    state.filterText = link.filter;
    ui.filter.value = link.filter;
  }
  const dmax = parseFloat(link.dmax);
  if (Number.isFinite(dmax)) {
    state.diceMax = dmax;
    ui.diceMax.value = String(dmax);
  }
  const thr = parseFloat(link.thr);
  if (Number.isFinite(thr) && thr > 0 && thr < 1) state.threshold = thr;
  if (link.wl) {
    const parts = link.wl.split(',').map(Number);
    if (parts.length === 2 && parts.every(Number.isFinite)) {
      state.wl = {preset: 'custom', level: Math.min(1, Math.max(0, parts[0])),
                  width: Math.min(1, Math.max(0.05, parts[1]))};
      syncWindowControls();
    } else if (WL_PRESETS.some(([v]) => v === link.wl)) {
      setWindowPreset(link.wl);
    }
  }
  const op = parseFloat(link.op);
  if (Number.isFinite(op) && op >= 0 && op <= 100) {
    state.opacity = op / 100;
    ui.opacity.value = String(op);
    ui.opacityLabel.textContent = `${op}%`;
  }
}

function runsLinkValues() {
  const values = {run: state.run, tag: state.tag, cmp: state.compareRun,
                  step: state.steps.length ? state.steps[state.stepIndex] : null};
  if (state.overlay !== 'both') values.overlay = state.overlay;
  if (state.sort !== 'dice-asc') values.sort = state.sort;
  if (state.filterText) values.filter = state.filterText;
  if (state.diceMax !== null) values.dmax = state.diceMax;
  if (state.threshold !== null) values.thr = state.threshold;
  if (state.wl.preset === 'custom') values.wl = `${state.wl.level},${state.wl.width}`;
  else if (state.wl.preset !== 'full') values.wl = state.wl.preset;
  if (state.opacity !== 1) values.op = Math.round(state.opacity * 100);
  if (state.fromStep !== null) values.from = state.fromStep;
  if (state.viewer) {
    values.image = state.viewer.id;
    if (state.viewer.side === 'b') values.side = 'b';
    if (state.viewer.zoom !== 1) values.zoom = state.viewer.zoom;
  }
  return values;
}

function writeLinkState() {
  if (arm.view !== 'arms' && state.link) return; // the link is not applied yet: do not overwrite it
  const ours = new Set(Object.values(LINK_KEYS));
  const values = arm.view === 'arms' ?
      {view: 'arms', tag: arm.tag, a: arm.a, b: arm.b, seed: arm.seed, sort: arm.sort, image: arm.image} :
      runsLinkValues();
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
  ui.link.setAttribute('href', url);
  ui.link.textContent = arm.view === 'arms' ? '' : 'link (copy this address)';
}

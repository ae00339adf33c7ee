// The overview's plots, drawn with Observable Plot (served from the project's own npm packages)
// from the figures the page carries; each plot's numbers are also in the table after it.
const figures = JSON.parse(document.getElementById('figures').textContent);
const { Plot } = window;
const width = (el) => Math.max(300, el.clientWidth || 600);

const charts = {
  notices: (w) => Plot.plot({
    width: w, height: 260, x: { label: 'Week beginning', type: 'band' }, y: { label: 'Notices', grid: true },
    color: { legend: true, label: 'Prison', type: 'ordinal', scheme: 'tableau10' },
    marks: [Plot.barY(figures.notices, { x: 'week', y: 'notices', fill: 'prison', tip: true }), Plot.ruleY([0])],
  }),
  disclosures: (w) => Plot.plot({
    width: w, height: 160, marginLeft: 170, x: { label: 'Disclosures', grid: true }, y: { label: null },
    marks: [Plot.barX(figures.disclosures.by_kind, { y: 'kind', x: 'disclosures', fill: '#1d70b8', tip: true }), Plot.ruleX([0])],
  }),
  withheld: (w) => Plot.plot({
    width: w, height: 40 + 28 * Math.max(1, figures.disclosures.withheld.length), marginLeft: 280,
    x: { label: 'Fields withheld', grid: true }, y: { label: null },
    marks: [Plot.barX(figures.disclosures.withheld, { y: (d) => `${d.rule}: ${d.reason}`, x: 'fields', fill: '#d4351c', sort: { y: '-x' }, tip: true }), Plot.ruleX([0])],
  }),
  deliveries: (w) => Plot.plot({
    width: w, height: 180, marginLeft: 100, x: { label: 'Deliveries', grid: true }, y: { label: null },
    color: { domain: ['delivered', 'waiting', 'retrying', 'dead', 'revoked', 'superseded'], range: ['#00703c', '#505a5f', '#f47738', '#d4351c', '#6f72af', '#b1b4b6'] },
    marks: [Plot.barX(figures.deliveries.by_state, { y: 'state', x: 'deliveries', fill: 'state', tip: true }), Plot.ruleX([0])],
  }),
  latency: (w) => Plot.plot({
    width: w, height: 200, x: { label: 'Week beginning', type: 'band' }, y: { label: 'Seconds', grid: true },
    color: { legend: true, type: 'ordinal', scheme: 'tableau10' },
    marks: [
      Plot.lineY(figures.deliveries.latency.flatMap((d) => [
        { week: d.week, seconds: d.median_seconds, measure: 'median' },
        { week: d.week, seconds: d.p90_seconds, measure: '90th percentile' }]), { x: 'week', y: 'seconds', stroke: 'measure', marker: 'circle', tip: true }),
      Plot.ruleY([0]),
    ],
  }),
  timeliness: (w) => Plot.plot({
    width: w, height: 200, x: { label: 'Month of release', type: 'band' }, y: { label: 'Median hours to first acknowledgement', grid: true },
    color: { legend: true, type: 'ordinal', scheme: 'tableau10' },
    marks: [Plot.lineY(figures.timeliness.filter((d) => d.median_hours !== null), { x: 'month', y: 'median_hours', stroke: 'recipient_kind', marker: 'circle', tip: true }), Plot.ruleY([0])],
  }),
  overdue: (w) => Plot.plot({
    width: w, height: 200, marginLeft: 90, x: { label: 'Deadlines', grid: true }, y: { label: null },
    color: { legend: true, type: 'ordinal', scheme: 'tableau10' },
    marks: [Plot.barX(figures.overdue.flatMap((d) => [
      { kind: d.kind, count: d.alerted, what: 'alerted as overdue' },
      { kind: d.kind, count: d.overdue_now, what: 'passed unmet now' }]), { y: 'kind', x: 'count', fill: 'what', tip: true }), Plot.ruleX([0])],
  }),
  continuity: (w) => {
    const lines = [[figures.references.national_2023_24, 'national 53% (2023-24)'], [figures.references.ambition, 'ambition 75%']];
    return Plot.plot({
      width: w, height: 300, marginRight: 150, x: { label: 'Month of release', type: 'band' },
      y: { label: 'Continuity of care', domain: [0, 1], tickFormat: '.0%', grid: true },
      color: { legend: true, label: 'Prison', type: 'ordinal', scheme: 'tableau10' },
      marks: [
        Plot.ruleY(lines, { y: (d) => d[0], stroke: '#505a5f', strokeDasharray: '4,3' }),
        Plot.text(lines, { y: (d) => d[0], text: (d) => d[1], frameAnchor: 'right', textAnchor: 'start', dx: 6 }),
        Plot.lineY(figures.continuity.filter((d) => d.rate !== null), { x: 'month', y: 'rate', stroke: 'prison', marker: 'circle', tip: true }),
      ],
    });
  },
};

// What each plot draws from, and the measure that must not be all zero for it to be drawn.
const data = {
  notices: [figures.notices, 'notices'],
  disclosures: [figures.disclosures.by_kind, 'disclosures'],
  withheld: [figures.disclosures.withheld, 'fields'],
  deliveries: [figures.deliveries.by_state, 'deliveries'],
  latency: [figures.deliveries.latency, 'delivered'],
  timeliness: [figures.timeliness.filter((d) => d.median_hours !== null), 'acknowledged'],
  overdue: [figures.overdue.map((d) => ({ n: d.alerted + d.overdue_now })), 'n'],
  continuity: [[{ n: 1 }], 'n'], // the reference lines are worth drawing on their own
};

for (const el of document.querySelectorAll('[data-plot]')) {
  const [rows, measure] = data[el.dataset.plot];
  if (!rows.some((d) => d[measure])) {
    el.innerHTML = '<p class="govuk-body govuk-hint">Nothing to plot yet.</p>';
    el.removeAttribute('role');
    el.removeAttribute('aria-label');
    continue;
  }
  try {
    const chart = charts[el.dataset.plot](width(el));
    chart.setAttribute('aria-hidden', 'true'); // the container names it; the table holds the numbers
    el.replaceChildren(chart);
  } catch (error) {
    el.textContent = 'This chart could not be drawn; its numbers are in the table.';
  }
}

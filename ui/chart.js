/* chart.js - the report's charts, drawn as SVG from the report's JSON.
 * Our own small module rather than a library: two chart kinds (a stacked
 * distribution bar per group, and a line of on-time rates per week) in about
 * 150 lines, no inline style (colours come from style.css classes, so the
 * strict CSP holds), and every figure also in the table beside it.
 * Each mark carries its number in data-* attributes and a <title>, so
 * screen readers and the tests read the same figures the eye sees. */
'use strict';
(function (R) {
  const { el } = R.dom;
  const s = (tag, attrs, ...kids) => el('svg:' + tag, attrs, ...kids);
  /* Drawn at the width it will be shown at, so 13-px text stays 13 px on a
   * phone as on a desktop. */
  function width() {
    const m = document.getElementById('main');
    return Math.round(Math.max(300, Math.min(900, (m ? m.clientWidth : 760) - 32)));
  }

  /* rows: [{key, label, counts: [n0..n4], median, p90}] ; bucketLabels: 5 strings */
  function distribution(title, rows, bucketLabels, fmt) {
    const W = width(), rowH = 34, top = 8;
    const left = Math.round(W * 0.26), right = Math.round(Math.max(W * 0.22, Math.min(190, W * 0.3)));
    const legendRows = W < 560 ? 2 : 1;
    const H = top + rows.length * rowH + 28 + legendRows * 18;
    const barW = W - left - right;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
      'aria-label': title, preserveAspectRatio: 'xMinYMin meet' });
    rows.forEach((r, i) => {
      const y = top + i * rowH;
      const total = r.counts.reduce((a, b) => a + b, 0);
      const g = s('g', { class: 'chart-row', 'data-group': r.key == null ? '' : r.key, 'data-total': total });
      g.append(s('text', { x: left - 8, y: y + 20, class: 'chart-label', 'text-anchor': 'end' }, clip(r.label, Math.max(10, Math.floor(left / 7.5)))));
      let x = left;
      r.counts.forEach((n, b) => {
        const w = total ? barW * n / total : 0;
        const rect = s('rect', { x: x.toFixed(2), y: y + 4, width: w.toFixed(2), height: rowH - 10,
          class: 'bucket bucket-' + b, 'data-bucket': b, 'data-count': n },
          s('title', {}, `${r.label}: ${bucketLabels[b]} — ${fmt.number(n)}`));
        g.append(rect);
        if (n > 0 && w >= 22)
          g.append(s('text', { x: (x + w / 2).toFixed(2), y: y + 21, class: 'bucket-text bucket-text-' + b,
            'text-anchor': 'middle', 'aria-hidden': 'true' }, fmt.number(n)));
        x += w;
      });
      if (!total) g.append(s('rect', { x: left, y: y + 4, width: barW, height: rowH - 10, class: 'bucket-none' }));
      g.append(s('text', { x: left + barW + 6, y: y + 20, class: 'chart-side' },
        r.median == null ? '—' : `${fmt.duration(r.median)} / ${fmt.duration(r.p90)}`));
      svg.append(g);
    });
    /* legend */
    let ly = top + rows.length * rowH + 14;
    let lx = 8;
    bucketLabels.forEach((lab, b) => {
      const w = 16 + lab.length * 7 + 14;
      if (lx + w > W && lx > 8) { lx = 8; ly += 18; }
      svg.append(s('rect', { x: lx, y: ly, width: 12, height: 12, class: 'bucket bucket-' + b }));
      svg.append(s('text', { x: lx + 16, y: ly + 11, class: 'chart-legend' }, lab));
      lx += w;
    });
    svg.setAttribute('viewBox', `0 0 ${W} ${ly + 20}`);
    return svg;
  }

  /* weeks: [{week, accept: {on_time_rate, judged}, first_contact: {...}}] */
  function weekly(title, weeks, series, fmt) {
    const W = width(), H = 240, left = 50, right = 16, top = 14, bottom = 56, inset = 24;
    const pw = W - left - right, ph = H - top - bottom;
    const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title });
    for (let p = 0; p <= 100; p += 25) {
      const y = top + ph * (1 - p / 100);
      svg.append(s('line', { x1: left, x2: left + pw, y1: y, y2: y, class: 'grid' }));
      svg.append(s('text', { x: left - 6, y: y + 4, class: 'axis', 'text-anchor': 'end' }, fmt.percent(p / 100)));
    }
    const n = weeks.length;
    const xOf = i => left + inset + (n <= 1 ? (pw - 2 * inset) / 2 : (pw - 2 * inset) * i / (n - 1));
    weeks.forEach((w, i) => {
      svg.append(s('text', { x: xOf(i), y: top + ph + 18, class: 'axis', 'text-anchor': 'middle' }, fmt.day(w.week)));
    });
    series.forEach((se, k) => {
      const pts = [];
      const g = s('g', { class: 'series series-' + k, 'data-series': se.key });
      weeks.forEach((w, i) => {
        const v = w[se.key] && w[se.key].on_time_rate;
        if (v == null) return;
        const x = xOf(i), y = top + ph * (1 - v);
        pts.push(`${x.toFixed(1)},${y.toFixed(1)}`);
        g.append(s('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 5, class: 'point',
          'data-week': w.week, 'data-rate': v, 'data-judged': w[se.key].judged },
          s('title', {}, `${se.label}, ${fmt.day(w.week)}: ${fmt.percent(v)} (${fmt.number(w[se.key].on_time)}/${fmt.number(w[se.key].judged)})`)));
      });
      if (pts.length > 1) g.prepend(s('polyline', { points: pts.join(' '), class: 'line' }));
      svg.append(g);
      const lx = left + k * Math.min(220, (W - left) / 2), ly = H - 16;
      svg.append(s('line', { x1: lx, x2: lx + 22, y1: ly - 4, y2: ly - 4, class: 'legend-line series-' + k }));
      svg.append(s('text', { x: lx + 28, y: ly, class: 'chart-legend' }, se.label));
    });
    if (!n) svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis' }, fmt.empty));
    return svg;
  }

  function clip(str, n) { str = String(str == null ? '' : str); return str.length > n ? str.slice(0, n - 1) + '…' : str; }

  R.chart = { distribution, weekly };
})(window.RFD = window.RFD || {});

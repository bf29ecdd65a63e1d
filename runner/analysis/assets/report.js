"use strict";
// sparring report. Everything shown here comes from the JSON block and is put on the page
// with textContent (Node.append of strings), never parsed as markup: transcript text is
// untrusted. The list shows one page of conversations at a time and the viewer builds only
// the conversations it shows, so 10,000 conversations do not become 10,000 DOM trees.
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const F = {};
  data.turnFields.forEach(function (name, i) { F[name] = i; });
  const METRICS = data.metrics;
  const PAGE = 50;
  const MAX_COLUMNS = 4;
  const groupColour = new Map();
  data.groups.forEach(function (g, i) { groupColour.set(g.group, i % 8); });

  function el(tag, props) {
    const node = document.createElement(tag);
    if (props) {
      for (const key of Object.keys(props)) {
        const value = props[key];
        if (value === null || value === undefined) continue;
        if (key === "text") node.textContent = String(value);
        else if (key === "class") node.className = value;
        else if (key === "title") node.title = String(value);
        else if (key === "on") for (const ev of Object.keys(value)) node.addEventListener(ev, value[ev]);
        else if (key === "data") for (const k of Object.keys(value)) node.dataset[k] = String(value[k]);
        else node[key] = value;
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" || typeof child === "number" ? String(child) : child);
    }
    return node;
  }

  function metric(name) { return METRICS.find(function (m) { return m.name === name; }); }

  function fmt(value, unit) {
    if (value === null || value === undefined) return "–";
    if (unit === "share") return (100 * value).toFixed(1) + "%";
    if (unit === "ms") return Math.round(value).toLocaleString("en");
    if (Math.abs(value) >= 100) return value.toFixed(0);
    return value.toFixed(2);
  }

  function estimateCell(e, unit, apart) {
    if (!e || e.value === null) return el("td", { class: "none", text: "–", title: "no data" });
    const ci = e.ci_low === null ? "no interval" : "[" + fmt(e.ci_low, unit) + ", " + fmt(e.ci_high, unit) + "]";
    return el("td", { class: apart ? "apart" : "", title: e.n + " conversations" },
      fmt(e.value, unit), el("span", { class: "ci", text: ci }));
  }

  // A group's interval that overlaps no other group's marks a difference worth a look. A
  // group without an interval (one conversation, or no data) cannot be told apart from:
  // then nothing is marked.
  function apartFrom(groups, name) {
    const result = new Set();
    groups.forEach(function (g, i) {
      const e = g.metrics[name];
      if (!e || e.ci_low === null || groups.length < 2) return;
      const clear = groups.every(function (h, j) {
        const f = h.metrics[name];
        if (i === j) return true;
        return !!f && f.ci_low !== null && (e.ci_high < f.ci_low || e.ci_low > f.ci_high);
      });
      if (clear) result.add(i);
    });
    return result;
  }

  function groupHead(g) {
    return el("th", { class: "c" + (groupColour.get(g.group) || 0), title: g.persona || g.group },
      el("span", { class: "swatch" }), g.group,
      el("span", { class: "ci", text: g.conversations + " conv., " + g.turns + " turns" }));
  }

  function metricTable(table, groups, names) {
    table.replaceChildren();
    table.append(el("thead", null, el("tr", null, el("th", { text: "metric" }), ...groups.map(groupHead))));
    const body = el("tbody");
    for (const name of names) {
      const m = metric(name);
      const apart = apartFrom(groups, name);
      body.append(el("tr", { data: { metric: name } },
        el("th", { text: m.label, title: m.definition }),
        ...groups.map(function (g, i) { return estimateCell(g.metrics[name], m.unit, apart.has(i)); })));
    }
    table.append(body);
  }

  function renderSummary() {
    const s = data.settings;
    const convs = data.conversations.length;
    document.getElementById("overview").textContent =
      convs.toLocaleString("en") + " conversations in " + data.scenarios.length + " scenario(s), grouped by " + s.by +
      (data.sources.length ? " · from " + data.sources.join(", ") : "");
    document.getElementById("summary-note").textContent =
      "Each cell: the value, and under it the 95% interval from a " + s.method + ", " + s.resamples +
      " resamples, seed " + s.seed + ". Highlighted: an interval that overlaps no other group's, each group having one.";
    metricTable(document.getElementById("summary-table"), data.groups, METRICS.map(function (m) { return m.name; }));
    const dl = document.getElementById("definitions");
    for (const m of METRICS) dl.append(el("dt", { text: m.name }), el("dd", { text: m.definition }));
    if (data.skippedCount) {
      const box = document.getElementById("skipped");
      box.append(el("p", { class: "note", text: data.skippedCount + " file(s) could not be read and were left out:" }));
      const list = el("ul", { class: "note" });
      for (const item of data.skipped) list.append(el("li", { text: item[1] }));
      box.append(list);
    }
  }

  const SCENARIO_METRICS = ["win_rate", "concession_rate", "turns_to_concede", "words_per_turn",
    "over_length_rate", "self_repetition", "echo", "off_character_rate"];

  function renderScenarios() {
    const box = document.getElementById("scenario-tables");
    for (const s of data.scenarios) {
      const table = el("table", { data: { scenario: s.scenario } });
      metricTable(table, s.groups, SCENARIO_METRICS);
      box.append(el("h3", { text: s.scenario }), el("div", { class: "table-wrap" }, table));
    }
  }

  function pct(rate) {
    if (!rate || !rate.of) return "–";
    return rate.count + " of " + rate.of + " (" + (100 * rate.rate).toFixed(0) + "%, 95% " +
      (100 * rate.ci_low).toFixed(0) + "–" + (100 * rate.ci_high).toFixed(0) + "%)";
  }

  function lostText(r) {
    if (!r.errors) return "";
    const detail = [];
    if (r.own_errors) detail.push(r.own_errors + " own");
    if (r.refusals) detail.push(r.refusals + " refused");
    return r.errors + (detail.length ? " (" + detail.join(", ") + ")" : "");
  }

  function renderLeaderboard() {
    if (!data.leaderboard) return;
    document.getElementById("leaderboard").hidden = false;
    document.getElementById("leaderboard-link").hidden = false;
    const table = document.getElementById("leaderboard-table");
    const lost = data.leaderboard.some(function (r) { return r.errors > 0; });
    const heads = ["#", "name", "rating", "95% interval", "ranks", "games", "wins", "draws", "losses"]
      .concat(lost ? ["lost to errors"] : []);
    table.append(el("thead", null, el("tr", null, ...heads.map(function (h) { return el("th", { text: h }); }))));
    const body = el("tbody");
    data.leaderboard.forEach(function (r, i) {
      const ci = r.ci_low === null ? "–" : "[" + r.ci_low.toFixed(0) + ", " + r.ci_high.toFixed(0) + "]";
      // Rows from older reports carry no ranks: their place in the list stands in.
      const rank = r.rank === null ? String(i + 1) : r.rank + (r.tied ? "=" : "");
      const ranks = r.rank === null ? "–" : r.rank === r.rank_worst ? String(r.rank) : r.rank + "–" + r.rank_worst;
      const row = el("tr", null, el("td", { text: rank, title: r.tied ? "shares its rank: the intervals cannot tell them apart" : null }),
        el("td", { text: r.name }), el("td", { text: r.rating.toFixed(0) }),
        el("td", { text: ci }), el("td", { text: ranks }), el("td", { text: r.games }), el("td", { text: r.wins }),
        el("td", { text: r.draws }), el("td", { text: r.losses }));
      if (lost) row.append(el("td", { text: lostText(r) }));
      body.append(row);
    });
    table.append(body);
    if (data.ratingMethod) {
      document.getElementById("leaderboard-method").textContent = data.ratingMethod +
        ". Rank: 1 + the entrants whose interval lies wholly above; ranks: the range the intervals allow; = marks a shared rank.";
    }
    renderJudges();
  }

  function renderJudges() {
    const report = data.judges;
    if (!report) return;
    const box = document.getElementById("judges");
    box.hidden = false;
    const table = el("table", { id: "judges-table" });
    table.append(el("thead", null, el("tr", null, ...["judge", "games", "verdicts", "no valid verdict",
      "flips with the order", "orders' alpha", "Speaker 1 named", "own model: games", "for / against own"]
      .map(function (h) { return el("th", { text: h }); }))));
    const body = el("tbody");
    for (const j of report.judges) {
      const own = j.self_judged;
      body.append(el("tr", null, el("td", { text: j.model }), el("td", { text: j.games }),
        el("td", { text: j.verdicts }), el("td", { text: j.abstentions }), el("td", { text: pct(j.order_flips) }),
        el("td", { text: j.order_alpha === null ? "–" : j.order_alpha.toFixed(2) }), el("td", { text: pct(j.speaker_1) }),
        el("td", { text: own.games }), el("td", { text: own.verdicts_for_own_model + " / " + own.verdicts_against_own_model })));
    }
    table.append(body);
    box.append(el("div", { class: "table-wrap" }, table));
    const between = report.between_judges;
    if (between) {
      box.append(el("p", { class: "note", text: "Judges " + between.models.join(", ") + " unanimous on " +
        pct(between.unanimous) + " of the games several decided; alpha " +
        (between.alpha === null ? "–" : between.alpha.toFixed(2)) + "." }));
    }
  }

  // ------------------------------------------------------------------ transcript browser
  const convs = data.conversations;
  const state = { model: "", scenario: "", outcome: "", page: 0, selected: null, sideBySide: false, rows: [] };

  // A tournament game's agents are its entrants, named: two personas of one model differ.
  function lineup(c) {
    return c.agents.map(function (a) { return c.game ? a.name : a.model; }).join(" vs ");
  }

  function outcomeKind(c) {
    if (c.status !== "success") return c.status;
    if (c.reason === "end_rule" || c.reason === "jury") return c.winner || c.loser ? "won or lost" : "draw";
    return "turn limits";
  }

  const DECIDE = { moved: "votes moved", after: "majority after" };

  function outcomeText(c) {
    if (c.status === "error") return "error: " + (c.error || "unknown");
    if (c.status !== "success") return c.status;
    const parts = [];
    if (c.winner) parts.push(c.winner + " wins");
    if (c.loser) parts.push(c.loser + " loses");
    if (!parts.length) parts.push(c.reason === "end_rule" || c.reason === "jury" ? "draw" : "no winner");
    let why = c.reason || "";
    if (c.turn !== null && c.reason === "end_rule") why = "turn " + c.turn + ": " + (c.rule || "end rule");
    if (c.reason === "jury") why = "jury: " + (DECIDE[c.rule] || c.rule || "vote");
    return parts.join(", ") + " (" + why + ")";
  }

  function fillSelect(id, label, values) {
    const select = document.getElementById(id);
    select.append(el("option", { value: "", text: "all " + label }));
    for (const v of values) select.append(el("option", { value: v, text: v }));
    return select;
  }

  function uniqueSorted(values) { return Array.from(new Set(values)).sort(); }

  function filtered() {
    return convs.filter(function (c) {
      if (state.scenario && c.scenario !== state.scenario) return false;
      if (state.outcome && outcomeKind(c) !== state.outcome) return false;
      if (state.model && !c.agents.some(function (a) { return a.model === state.model; })) return false;
      return true;
    });
  }

  function renderList() {
    state.rows = filtered();
    const pages = Math.max(1, Math.ceil(state.rows.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * PAGE;
    const shown = state.rows.slice(start, start + PAGE);
    const list = document.getElementById("conv-list");
    list.replaceChildren(...shown.map(function (c) {
      return el("button", {
        type: "button", class: "conv-row" + (c === state.selected ? " selected" : ""),
        data: { id: c.id }, on: { click: function () { select(c); } }
      }, el("span", { class: "line1", text: c.scenario + " #" + (c.repeat === null ? "?" : c.repeat) }),
        el("br"), el("span", { class: "line2", text: lineup(c) }),
        el("br"), el("span", { class: "line2", text: outcomeText(c) + " · " + c.turns.length + " turns" }));
    }));
    document.getElementById("list-count").textContent = state.rows.length
      ? (start + 1) + "–" + (start + shown.length) + " of " + state.rows.length.toLocaleString("en") + " conversations"
      : "no conversation matches";
    document.getElementById("prev-page").disabled = state.page === 0;
    document.getElementById("next-page").disabled = state.page >= pages - 1;
  }

  function turnStats(t) {
    const bits = [];
    const add = function (v, label) { if (v !== null && v !== undefined) bits.push(label(v)); };
    add(t[F.words], function (v) { return v + " words"; });
    add(t[F.sentences], function (v) { return v + " sentences"; });
    add(t[F.tokens], function (v) { return v + " tokens"; });
    add(t[F.ttft_ms], function (v) { return "first token " + Math.round(v) + " ms"; });
    add(t[F.latency_ms], function (v) { return Math.round(v) + " ms"; });
    add(t[F.sentiment], function (v) { return "sentiment " + v.toFixed(2); });
    add(t[F.echo], function (v) { return "echo " + Math.round(100 * v) + "%"; });
    add(t[F.self_repetition], function (v) { return "self-repetition " + Math.round(100 * v) + "%"; });
    add(t[F.language], function (v) { return "language " + v; });
    return bits.join(" · ");
  }

  function overrunText(kinds) {
    return "over budget: " + kinds.join(", ");
  }

  // The moderator's lines: set apart in the middle, named as the moderator, no measures.
  function renderModeratorLine(c, t, index) {
    const model = c.moderator && c.moderator.model;
    return el("li", { class: "turn moderator", data: { index: index, role: "moderator" } },
      el("div", { class: "who" }, el("span", { class: "name", text: String(t[F.speaker]) }), " ",
        model ? el("span", { class: "model", text: model }) : null,
        el("span", { class: "badge moderator", text: "moderator" })),
      el("div", { class: "content", text: t[F.content] }),
      el("div", { class: "stats", text: "#" + index }));
  }

  function budgetText(budget) {
    if (!budget) return "";
    return Object.keys(budget).map(function (k) { return budget[k] + " " + k; }).join(", ");
  }

  function phaseHeading(p) {
    const facts = [p.speakers.map(function (s) { return s.speaker; }).join(", "),
      p.turns + (p.turns === 1 ? " turn" : " turns") + " each"];
    if (p.budget) facts.push("budget " + budgetText(p.budget));
    return el("li", { class: "phase-heading", data: { phase: p.index } },
      el("span", { class: "name", text: p.name }), el("span", { class: "note", text: " " + facts.join(" · ") }));
  }

  function renderTurn(c, t, position_) {
    const index = t[F.index] === null ? position_ : t[F.index];
    if (t[F.role] === "moderator") return renderModeratorLine(c, t, index);
    const who = t[F.speaker];
    const position = typeof who === "number" ? who : -1;
    const agent = position >= 0 ? c.agents[position] : { name: String(who), model: "" };
    const deciding = c.reason === "end_rule" && c.turn === index;
    const classes = ["turn", "c" + (position >= 0 ? position % 8 : 7)];
    if (position % 2 === 1) classes.push("right");
    if (deciding) classes.push("deciding");
    return el("li", { class: classes.join(" "), data: { index: index } },
      el("div", { class: "who" }, el("span", { class: "name", text: agent.name }), " ",
        el("span", { class: "model", text: agent.model }),
        t[F.role] ? el("span", { class: "badge side", text: t[F.role] }) : null,
        t[F.scripted] ? el("span", { class: "badge", text: "scripted" }) : null,
        t[F.overrun] ? el("span", { class: "badge warn", text: overrunText(t[F.overrun]) }) : null,
        t[F.over_length] === 1 ? el("span", { class: "badge warn", text: "over length" }) : null,
        t[F.off_character] ? el("span", { class: "badge warn", text: "off character" }) : null,
        deciding ? el("span", { class: "badge deciding", text: "deciding turn: " + (c.rule || "end rule") }) : null),
      el("div", { class: "content", text: t[F.content] }),
      el("div", { class: "stats", text: "#" + index + " · " + turnStats(t) }));
  }

  // The turns with each phase's heading before its first turn.
  function turnItems(c) {
    const phases = new Map(c.phases.map(function (p) { return [p.index, p]; }));
    const items = [];
    let current = null;
    c.turns.forEach(function (t, i) {
      const phase = t[F.phase];
      if (phase !== null && phase !== current && phases.has(phase)) items.push(phaseHeading(phases.get(phase)));
      if (phase !== null) current = phase;
      items.push(renderTurn(c, t, i));
    });
    return items;
  }

  function overrunCell(s) {
    const bits = [];
    if (s.words_over) bits.push("words ×" + s.words_over);
    if (s.tokens_over) bits.push("tokens ×" + s.tokens_over);
    return el("td", { class: bits.length ? "over" : "none", text: bits.length ? bits.join(", ") : "–" });
  }

  function phaseTable(c) {
    if (!c.phases.length) return null;
    const table = el("table", { class: "phases" });
    table.append(el("thead", null, el("tr", null, ...["phase", "speaker", "turns", "words", "budget", "overruns"]
      .map(function (h) { return el("th", { text: h }); }))));
    const body = el("tbody");
    for (const p of c.phases) {
      p.speakers.forEach(function (s, i) {
        body.append(el("tr", { data: { phase: p.index } },
          el("td", { text: i === 0 ? p.name : "" }), el("td", { text: s.speaker }),
          el("td", { text: s.turns }), el("td", { text: s.words }),
          el("td", { text: budgetText(p.budget) || "–" }), overrunCell(s)));
      });
    }
    table.append(body);
    return el("details", { class: "debate", open: true }, el("summary", { text: "phases" }),
      el("div", { class: "table-wrap" }, table));
  }

  const STAGES = ["before", "after"];
  const ORDERS = ["as_seated", "swapped"];

  function voteCell(v) {
    if (!v) return el("td", { class: "none", text: "–" });
    const text = v.vote === null ? "no vote" : v.vote;
    return el("td", { class: "vote " + (v.vote === null ? "none" : v.vote), title: v.vote === null ? v.error : v.reason, text: text });
  }

  function juryBlock(c) {
    if (!c.votes.length) return null;
    const stages = STAGES.filter(function (st) { return c.votes.some(function (v) { return v.stage === st; }); });
    const judges = [];
    const cast = new Map();
    for (const v of c.votes) {
      if (!cast.has(v.judge)) { cast.set(v.judge, { model: v.model, self: false, votes: {} }); judges.push(v.judge); }
      const j = cast.get(v.judge);
      j.self = j.self || v.self_judged;
      j.votes[v.stage + " " + v.order] = v;
    }
    const heads = ["judge", "model"];
    for (const st of stages) for (const o of ORDERS) heads.push(st + (o === "as_seated" ? ", proposition first" : ", opposition first"));
    const table = el("table", { class: "jury" });
    table.append(el("thead", null, el("tr", null, ...heads.map(function (h) { return el("th", { text: h }); }))));
    const body = el("tbody");
    for (const name of judges) {
      const j = cast.get(name);
      const cells = [];
      for (const st of stages) for (const o of ORDERS) cells.push(voteCell(j.votes[st + " " + o]));
      body.append(el("tr", { data: { judge: name } }, el("td", { text: name }),
        el("td", null, j.model, j.self ? el("span", { class: "badge warn", title: "the judge's model is a debater's", text: "self-judged" }) : null),
        ...cells));
    }
    table.append(body);
    const lines = [];
    if (c.tally) {
      for (const st of stages) {
        const t = c.tally[st];
        if (t) lines.push(st + ": " + t.for + " for, " + t.against + " against, " + t.undecided + " undecided");
      }
      const b = c.tally.before, a = c.tally.after;
      if (b && a) {
        const moved = (a.for - b.for) - (a.against - b.against);
        lines.push("moved " + (moved > 0 ? "+" : "") + moved + " towards the motion");
      }
    }
    return el("details", { class: "debate", open: true }, el("summary", { text: "jury" }),
      el("div", { class: "table-wrap" }, table),
      el("p", { class: "note tally", text: lines.join(" · ") + (lines.length ? ". " : "") +
        "A judge counts when its two orders agree; hover a vote for its reason." }));
  }

  function sidesText(c) {
    const sided = c.agents.filter(function (a) { return a.side; });
    return sided.map(function (a) { return a.side + ": " + a.name; }).join(" · ");
  }

  function renderConversation(c) {
    const agents = el("ul", { class: "agents" }, ...c.agents.map(function (a, i) {
      return el("li", { class: "c" + (i % 8) }, el("span", { class: "swatch" }), a.name + " · " + a.model + (a.side ? " · " + a.side : "") + " ",
        a.persona ? el("details", null, el("summary", { text: "persona" }), el("div", { class: "persona", text: a.persona })) : null);
    }));
    return el("article", { class: "conversation", data: { id: c.id } },
      el("h3", { text: c.scenario }),
      el("p", { class: "note", text: "conversation " + c.id + " · seed " + c.seed + " · run " +
        (c.repeat === null ? "?" : c.repeat + 1) + " of " + (c.repeats || "?") + " · " + c.path }),
      c.motion ? el("p", { class: "motion", text: "motion: " + c.motion }) : null,
      el("p", { class: "outcome" + (c.status === "error" ? " error" : ""), text: outcomeText(c) }),
      c.matched ? el("p", { class: "note", text: "matched: " + c.matched }) : null,
      agents,
      c.moderator ? el("p", { class: "note", text: "moderator: " + c.moderator.name +
        (c.moderator.model ? " · " + c.moderator.model : " (reads its lines)") + (sidesText(c) ? " · " + sidesText(c) : "") }) : null,
      phaseTable(c),
      juryBlock(c),
      el("ol", { class: "turns" }, ...turnItems(c)));
  }

  // The same scenario under other line-ups of models: the conversation with the same run
  // number (else the first) of each line-up.
  function companions(c) {
    const own = lineup(c);
    const byLineup = new Map([[own, c]]);
    for (const other of convs) {
      const key = lineup(other);
      if (other.scenario !== c.scenario || key === own) continue;
      const current = byLineup.get(key);
      if (!current || (current.repeat !== c.repeat && other.repeat === c.repeat)) byLineup.set(key, other);
    }
    return Array.from(byLineup.values()).slice(0, MAX_COLUMNS);
  }

  function renderViewer() {
    const viewer = document.getElementById("viewer");
    const c = state.selected;
    if (!c) {
      viewer.className = "viewer";
      viewer.replaceChildren(el("p", { class: "empty", text: "Pick a conversation from the list." }));
      return;
    }
    const shown = state.sideBySide ? companions(c) : [c];
    viewer.className = shown.length > 1 ? "viewer columns" : "viewer";
    viewer.replaceChildren(...shown.map(renderConversation));
  }

  function select(c) {
    state.selected = c;
    renderList();
    renderViewer();
  }

  function initBrowser() {
    const bind = function (id, key) {
      fillSelect(id, key === "outcome" ? "outcomes" : key + "s", key === "model"
        ? uniqueSorted(convs.flatMap(function (c) { return c.agents.map(function (a) { return a.model; }); }))
        : key === "scenario" ? uniqueSorted(convs.map(function (c) { return c.scenario; }))
          : uniqueSorted(convs.map(outcomeKind)));
      document.getElementById(id).addEventListener("change", function (event) {
        state[key] = event.target.value;
        state.page = 0;
        renderList();
        if (state.rows.length && state.rows.indexOf(state.selected) < 0) select(state.rows[0]);
      });
    };
    bind("filter-model", "model");
    bind("filter-scenario", "scenario");
    bind("filter-outcome", "outcome");
    document.getElementById("side-by-side").addEventListener("change", function (event) {
      state.sideBySide = event.target.checked;
      renderViewer();
    });
    document.getElementById("prev-page").addEventListener("click", function () { state.page -= 1; renderList(); });
    document.getElementById("next-page").addEventListener("click", function () { state.page += 1; renderList(); });
    renderList();
    if (state.rows.length) select(state.rows[0]); else renderViewer();
  }

  renderSummary();
  renderScenarios();
  renderLeaderboard();
  initBrowser();
  document.body.dataset.ready = "1";
})();

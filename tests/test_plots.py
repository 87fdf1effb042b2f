"""The figures: labelled ticks where the points are, one colour per strategy family in
every plot, visible legend entries, no offset notation."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from certify.experiments import paper_report, report  # noqa: E402


def rows():
    out = []
    for seed in ("1", "2"):
        for name, group, flops, ratio in [("bruteforce", "", 2.6e8, 1.0), ("cubic", "", 1.1e7, 0.97),
                                          ("gap", "", 1.58e6, 0.88), ("gap/exact/upper/each", "", 1.57e6, 0.88),
                                          ("subcubic/max_diff_exact/mean_query+diff/svd", "subcubic", 2.2e6, 0.8),
                                          ("subcubic/mean_query+max_diff/mean_query+diff/svd",
                                           "subcubic (direct-quadratic)", 4.5e6, 0.6)]:
            out.append({"seed": seed, "strategy": name, "group": group, "paper_flops": flops, "flops": flops,
                        "ratio": ratio, "bound": ratio, "d_vocab": "64", "k": "4"})
    return out


def labelled_ticks(ax):
    ax.figure.canvas.draw()
    lo, hi = ax.get_xlim()
    return [t for t in ax.xaxis.get_major_ticks() if lo <= t.get_loc() <= hi and t.label1.get_text()]


def test_cost_axis_has_labels_between_2e6_and_5e6():
    fig, ax = plt.subplots()
    ax.scatter([2e6, 3e6, 5e6], [0.5, 0.6, 0.7])
    report.style_log_cost_axis(ax)
    assert len(labelled_ticks(ax)) >= 2
    plt.close(fig)


def test_one_colour_per_family_in_both_plots_and_gap_in_the_legend():
    seen = {}
    for draw in ("report", "paper"):
        fig, ax = plt.subplots()
        rs = rows() if draw == "report" else paper_report.normalise(rows())
        report.scatter_families(ax, rs, [float(r["paper_flops"]) for r in rs], [float(r["ratio"]) for r in rs], 10)
        report.finish_legend(ax)
        for coll in ax.collections:
            seen.setdefault(coll.get_label(), set()).add(tuple(coll.get_facecolor()[0]))
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "gap" in labels and all(h.get_alpha() in (None, 1.0) for h in ax.get_legend().legend_handles)
        plt.close(fig)
    assert all(len(colours) == 1 for colours in seen.values()), seen


def test_report_and_paper_plots_are_written(tmp_path):
    assert all(p.is_file() for p in report.plot(rows(), tmp_path))
    paper_report.plot(paper_report.normalise(rows()), tmp_path / "all.png", "t")
    assert (tmp_path / "all.png").is_file()


def test_scrub_plot_has_no_offset_notation(tmp_path):
    from certify.experiments.scrub_results import Pair, plot
    import dataclasses
    fields = {f.name for f in dataclasses.fields(Pair)}
    base = {"seed": 1, "hypothesis": "h", "strategy": "gap", "ratio": 0.9991, "recovered": 0.99991}
    ps = [Pair(**{k: (v + i * 1e-5 if isinstance(v, float) else v) for k, v in base.items() if k in fields},
               **{k: 0.0 for k in fields - set(base)}) for i in range(5)]
    captured = []
    real_savefig = plt.Figure.savefig

    def spy(fig, *a, **k):
        fig.canvas.draw()
        captured.extend(ax.xaxis.get_offset_text().get_text() + ax.yaxis.get_offset_text().get_text()
                        for ax in fig.axes)
        return real_savefig(fig, *a, **k)
    plt.Figure.savefig = spy
    try:
        plot(ps, tmp_path)
    finally:
        plt.Figure.savefig = real_savefig
    assert captured and not any(captured)

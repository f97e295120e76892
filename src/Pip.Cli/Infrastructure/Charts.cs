using System.Globalization;
using Pip.Evaluation;
using Pip.Torch.Evaluation;
using ScottPlot;

namespace Pip.Cli.Infrastructure;

/// <summary>PNG charts of a comparison (ScottPlot): layer importance per method, perplexity and mean accuracy against the ratio.</summary>
internal static class Charts
{
    /// <summary>Chart width in pixels.</summary>
    public const int Width = 1000;

    /// <summary>Chart height in pixels.</summary>
    public const int Height = 600;

    /// <summary>The file name of the importance chart.</summary>
    public const string ImportanceFile = "importance.png";

    /// <summary>The file name of the mean-accuracy chart.</summary>
    public const string AccuracyFile = "accuracy.png";

    /// <summary>The file name of a dataset's perplexity chart.</summary>
    public static string PerplexityFile(string dataset) => $"perplexity-{dataset}.png";

    /// <summary>Writes every chart of a comparison into a folder; returns the files written.</summary>
    public static IReadOnlyList<string> WriteAll(ComparisonResult result, string folder)
    {
        Directory.CreateDirectory(folder);
        var files = new List<string>();
        if (result.Importance.Count > 0)
        {
            var path = Path.Combine(folder, ImportanceFile);
            WriteImportance(result.Importance, result.OriginalLayerCount, path);
            files.Add(path);
        }

        foreach (var dataset in result.Setup.Datasets)
        {
            var path = Path.Combine(folder, PerplexityFile(dataset.Name));
            WritePerplexity(result, dataset.Name, path);
            files.Add(path);
        }

        if (result.Setup.Tasks.Count > 0)
        {
            var path = Path.Combine(folder, AccuracyFile);
            WriteAverageAccuracy(result, path);
            files.Add(path);
        }

        return files;
    }

    /// <summary>Per-layer importance on the dense model, one line per method, each normalised to [0, 1].</summary>
    public static void WriteImportance(IReadOnlyList<LayerImportance> importance, int layerCount, string path)
    {
        var plot = new Plot();
        try
        {
            foreach (var method in importance)
            {
                var xs = method.OriginalLayerIndices.Select(l => (double)l).ToArray();
                var scatter = plot.Add.Scatter(xs, method.Normalized.ToArray());
                scatter.LegendText = method.Method;
                scatter.LineWidth = 2;
                scatter.MarkerSize = 6;
            }

            plot.Title("Layer importance on the dense model (first-round scores, normalised per method)");
            plot.XLabel("Decoder layer");
            plot.YLabel("Normalised importance (0 = removed first)");
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(layerCount > 40 ? 4 : layerCount > 20 ? 2 : 1);
            plot.Axes.SetLimits(-0.5, Math.Max(layerCount - 0.5, 0.5), -0.05, 1.05);
            plot.ShowLegend(Edge.Right);
            Save(plot, path);
        }
        finally
        {
            plot.Dispose();
        }
    }

    /// <summary>Perplexity on one dataset against the parameter ratio, one line per method, all starting at the dense model.</summary>
    public static void WritePerplexity(ComparisonResult result, string dataset, string path)
    {
        double? Value(ComparisonRow row) => row.Perplexity.FirstOrDefault(p => p.Dataset == dataset)?.Perplexity;
        var label = PerplexityDatasets.DisplayName(dataset);
        WriteAgainstRatio(result, Value, path, $"{label} perplexity against the pruning ratio", $"{label} perplexity (lower is better)", logWhenWide: true);
    }

    /// <summary>Mean zero-shot accuracy against the parameter ratio, one line per method.</summary>
    public static void WriteAverageAccuracy(ComparisonResult result, string path) =>
        WriteAgainstRatio(result, r => r.AverageAccuracy * 100, path, "Mean zero-shot accuracy against the pruning ratio", "Mean accuracy, % (higher is better)", logWhenWide: false);

    private static void WriteAgainstRatio(ComparisonResult result, Func<ComparisonRow, double?> value, string path, string title, string yLabel, bool logWhenWide)
    {
        var dense = value(result.Dense);
        var series = result.Setup.Methods.Select(m =>
        {
            var points = new List<(double X, double Y)>();
            if (dense is { } d) points.Add((0, d));
            foreach (var row in result.Rows.Where(r => r.MethodKey == m.Key).OrderBy(r => r.TargetRatio))
            {
                if (value(row) is { } v && double.IsFinite(v)) points.Add((100 * (row.TargetRatio ?? 0), v));
            }

            return (m.Name, Points: points);
        }).Where(s => s.Points.Count > 0).ToArray();

        var all = series.SelectMany(s => s.Points.Select(p => p.Y)).Where(y => y > 0).ToArray();
        var log = logWhenWide && all.Length > 0 && all.Max() / all.Min() >= 10;
        var plot = new Plot();
        try
        {
            foreach (var (name, points) in series)
            {
                var ys = points.Select(p => log ? Math.Log10(Math.Max(p.Y, 1e-12)) : p.Y).ToArray();
                var scatter = plot.Add.Scatter(points.Select(p => p.X).ToArray(), ys);
                scatter.LegendText = name;
                scatter.LineWidth = 2;
                scatter.MarkerSize = 7;
            }

            if (log)
            {
                plot.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericAutomatic
                {
                    MinorTickGenerator = new ScottPlot.TickGenerators.LogMinorTickGenerator(),
                    IntegerTicksOnly = true,
                    LabelFormatter = y => Math.Pow(10, y).ToString("G4", CultureInfo.InvariantCulture),
                };
                yLabel += ", log scale";
            }

            var ratios = new[] { 0.0 }.Concat(result.Setup.Ratios.Select(r => 100 * r)).ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ratios,
                ratios.Select(r => r.ToString("0.#", CultureInfo.InvariantCulture) + "%").ToArray());
            plot.Title(title);
            plot.XLabel("Target fraction of parameters removed (0% = dense model)");
            plot.YLabel(yLabel);
            plot.ShowLegend(Edge.Right);
            Save(plot, path);
        }
        finally
        {
            plot.Dispose();
        }
    }

    /// <summary>
    /// Best-so-far curves of searches: per series, the lowest objective after each trial (steps), with the objective of
    /// every trial of the first series as dots, and optional horizontal reference lines (for example the dense model).
    /// </summary>
    /// <param name="series">Per series, its name, the best-so-far value after each trial (NaN until the first value) and, optionally, each trial's own value (NaN for a failed one).</param>
    /// <param name="references">Named horizontal lines.</param>
    /// <param name="path">The PNG file.</param>
    /// <param name="title">The chart's title.</param>
    /// <param name="yLabel">The y axis label.</param>
    public static void WriteBestSoFar(IReadOnlyList<(string Name, IReadOnlyList<double> BestSoFar, IReadOnlyList<double>? Values)> series,
        IReadOnlyList<(string Name, double Value)> references, string path, string title, string yLabel)
    {
        var plot = new Plot();
        try
        {
            var all = series.SelectMany(s => s.BestSoFar.Concat(s.Values ?? [])).Concat(references.Select(r => r.Value)).Where(double.IsFinite).ToArray();
            foreach (var (name, curve, values) in series)
            {
                var xs = Enumerable.Range(1, curve.Count).Select(i => (double)i).Where((_, i) => double.IsFinite(curve[i])).ToArray();
                var ys = curve.Where(double.IsFinite).ToArray();
                if (xs.Length > 0)
                {
                    var line = plot.Add.Scatter(xs, ys);
                    line.LegendText = $"{name}: best so far";
                    line.LineWidth = 2;
                    line.MarkerSize = 0;
                    line.ConnectStyle = ConnectStyle.StepHorizontal;
                }

                if (values is not null)
                {
                    var vx = Enumerable.Range(1, values.Count).Where(i => double.IsFinite(values[i - 1])).Select(i => (double)i).ToArray();
                    var vy = values.Where(double.IsFinite).ToArray();
                    if (vx.Length > 0)
                    {
                        var dots = plot.Add.ScatterPoints(vx, vy);
                        dots.LegendText = $"{name}: trial";
                        dots.MarkerSize = 6;
                    }
                }
            }

            foreach (var (name, value) in references.Where(r => double.IsFinite(r.Value)))
            {
                var line = plot.Add.HorizontalLine(value);
                line.LegendText = name;
                line.LinePattern = LinePattern.Dashed;
            }

            plot.Title(title);
            plot.XLabel("Trial");
            plot.YLabel(yLabel);
            int trials = series.Count == 0 ? 1 : Math.Max(1, series.Max(s => s.BestSoFar.Count));
            if (all.Length > 0)
            {
                double low = all.Min(), high = all.Max(), pad = Math.Max((high - low) * 0.05, Math.Abs(high) * 1e-3 + 1e-9);
                plot.Axes.SetLimits(0.5, trials + 0.5, low - pad, high + pad);
            }

            plot.ShowLegend(Edge.Right);
            Save(plot, path);
        }
        finally
        {
            plot.Dispose();
        }
    }

    private static void Save(Plot plot, string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        plot.SavePng(path, Width, Height);
    }
}

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pip.Evaluation;

namespace Pip.Torch.Evaluation;

/// <summary>Writes a <see cref="ComparisonResult"/> as JSON and as a Markdown table in the layout of the PIP paper's Table 2.</summary>
public static class ComparisonReport
{
    /// <summary>
    /// The JSON settings: snake_case names, enums as snake_case strings, indented, NaN and infinities as strings
    /// (a perplexity can overflow).
    /// </summary>
    public static JsonSerializerOptions SerializerOptions { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    /// <summary>The result as JSON (pruning reports are not included: <see cref="ComparisonRow.Report"/> is written separately).</summary>
    /// <param name="result">The result.</param>
    public static string ToJson(ComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return JsonSerializer.Serialize(result, SerializerOptions);
    }

    /// <summary>
    /// The result as Markdown: a header with the settings; the main table (one row for the dense model, then per ratio
    /// one row per method: removed layers, parameters removed, perplexity per dataset, accuracy per task and their
    /// mean; the best value of each column within a ratio in bold); the layer importance of each method on the dense
    /// model (normalised to [0, 1]); the methods.
    /// </summary>
    /// <param name="result">The result.</param>
    public static string ToMarkdown(ComparisonResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var setup = result.Setup;
        var md = new StringBuilder();
        md.Append(CultureInfo.InvariantCulture, $"# Pruning comparison: {Path.GetFileName(Path.TrimEndingDirectorySeparator(result.Model))}\n\n");
        md.Append(CultureInfo.InvariantCulture, $"- Model: `{result.Model}` ({result.Architecture}, {result.OriginalLayerCount} layers, {result.OriginalParameterCount:N0} parameters, {setup.Dtype} on {setup.Device})\n");
        md.Append(CultureInfo.InvariantCulture, $"- Calibration: {setup.CalibrationSamples.Count} samples{(setup.CalibrationSource is { } c ? $" from `{c}`" : "")}, at most {setup.MaxTokens} tokens each; seed {setup.Seed}; {setup.PerturbationSets} perturbation sets per round (PIP); norm {setup.Norm}\n");
        md.Append(CultureInfo.InvariantCulture, $"- Perplexity: {setup.Windowing}\n");
        foreach (var d in setup.Datasets)
        {
            md.Append(CultureInfo.InvariantCulture, $"  - {PerplexityDatasets.DisplayName(d.Name)}: `{d.Path}`, {d.Rows:N0} rows, {d.Join}; {d.Tokens:N0} tokens, {d.EvaluatedTokens:N0} evaluated\n");
        }

        if (setup.Tasks.Count > 0)
        {
            var shown = setup.ShownAccuracy == ShownAccuracy.Acc ? "acc" : "acc_norm where lm-evaluation-harness reports it (PIQA, HellaSwag, ARC, OpenBookQA), acc elsewhere";
            md.Append(CultureInfo.InvariantCulture, $"- Zero-shot accuracy (%): {shown}\n");
            foreach (var t in setup.Tasks) md.Append(CultureInfo.InvariantCulture, $"  - {TaskDisplayName(t.Name)}: `{t.Path}`, {t.Items:N0} items\n");
        }

        md.Append('\n');
        AppendMainTable(md, result);
        AppendImportance(md, result);
        md.Append("\n## Methods\n\n");
        foreach (var m in setup.Methods)
        {
            md.Append(CultureInfo.InvariantCulture, $"- **{m.Name}** (`{m.Key}`): metric `{m.Metric}`, strategy `{m.Strategy}`{(m.ConsistencyDiscriminator ? ", consistency discriminator" : "")}{(m.Description is { } d ? $" — {d}" : "")}\n");
        }

        return md.ToString();
    }

    /// <summary>Writes the JSON to a file atomically (a temporary file in the same folder, then a move).</summary>
    /// <param name="result">The result.</param>
    /// <param name="path">The file.</param>
    public static void WriteJson(ComparisonResult result, string path) => WriteAtomically(path, ToJson(result));

    /// <summary>Writes the Markdown to a file atomically.</summary>
    /// <param name="result">The result.</param>
    /// <param name="path">The file.</param>
    public static void WriteMarkdown(ComparisonResult result, string path) => WriteAtomically(path, ToMarkdown(result));

    /// <summary>The short display name of a task: BoolQ, PIQA, HellaSwag, WinoGrande, ARC-e, ARC-c, OBQA, or the name itself.</summary>
    /// <param name="task">The lm-evaluation-harness name.</param>
    public static string TaskDisplayName(string task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task switch
        {
            "boolq" => "BoolQ",
            "piqa" => "PIQA",
            "hellaswag" => "HellaSwag",
            "winogrande" => "WinoGrande",
            "arc_easy" => "ARC-e",
            "arc_challenge" => "ARC-c",
            "openbookqa" => "OBQA",
            _ => task,
        };
    }

    /// <summary>A ratio as a percentage label (<c>20%</c>), <c>0%</c> for null.</summary>
    /// <param name="ratio">The ratio.</param>
    public static string RatioLabel(double? ratio) => ((ratio ?? 0) * 100).ToString("0.#", CultureInfo.InvariantCulture) + "%";

    private static void AppendMainTable(StringBuilder md, ComparisonResult result)
    {
        var datasets = result.Setup.Datasets.Select(d => d.Name).ToArray();
        var tasks = result.Setup.Tasks.Select(t => t.Name).ToArray();
        var header = new List<string> { "Ratio", "Method", "Removed layers", "Params removed" };
        header.AddRange(datasets.Select(d => $"{PerplexityDatasets.DisplayName(d)} PPL ↓"));
        header.AddRange(tasks.Select(t => $"{TaskDisplayName(t)} ↑"));
        if (tasks.Length > 0) header.Add("Avg ↑");
        md.Append("| ").Append(string.Join(" | ", header)).Append(" |\n");
        md.Append("|---|---|---|---:|").Append(string.Concat(Enumerable.Repeat("---:|", header.Count - 4))).Append('\n');

        AppendRows(md, [result.Dense], datasets, tasks);
        foreach (var group in result.Rows.GroupBy(r => r.TargetRatio).OrderBy(g => g.Key))
        {
            AppendRows(md, [.. group], datasets, tasks);
        }
    }

    private static void AppendRows(StringBuilder md, IReadOnlyList<ComparisonRow> rows, string[] datasets, string[] tasks)
    {
        // The best value of a column within a ratio: lowest perplexity, highest accuracy (bold only among 2+ rows).
        double? Ppl(ComparisonRow r, string d) => r.Perplexity.FirstOrDefault(p => p.Dataset == d)?.Perplexity;
        double? Acc(ComparisonRow r, string t) => r.Tasks.FirstOrDefault(a => a.Task == t)?.Shown;
        var bestPpl = datasets.ToDictionary(d => d, d => rows.Select(r => Ppl(r, d)).Where(v => v is { } x && !double.IsNaN(x)).DefaultIfEmpty().Min());
        var bestAcc = tasks.ToDictionary(t => t, t => rows.Select(r => Acc(r, t)).Where(v => v is not null).DefaultIfEmpty().Max());
        var bestAvg = rows.Select(r => r.AverageAccuracy).Where(v => v is not null).DefaultIfEmpty().Max();
        bool bold = rows.Count > 1;

        foreach (var row in rows)
        {
            var cells = new List<string>
            {
                RatioLabel(row.TargetRatio),
                row.Method,
                row.RemovedLayers.Count == 0 ? "–" : string.Join(", ", row.RemovedLayers.Order()),
                (100 * row.RemovedParameterRatio).ToString("F1", CultureInfo.InvariantCulture) + "%",
            };
            cells.AddRange(datasets.Select(d => Cell(Ppl(row, d), bestPpl[d], bold, 1)));
            cells.AddRange(tasks.Select(t => Cell(Acc(row, t), bestAcc[t], bold, 100)));
            if (tasks.Length > 0) cells.Add(Cell(row.AverageAccuracy, bestAvg, bold, 100));
            md.Append("| ").Append(string.Join(" | ", cells)).Append(" |\n");
        }
    }

    private static string Cell(double? value, double? best, bool bold, double scale)
    {
        if (value is not { } v) return "–";
        var text = double.IsFinite(v) ? (scale * v).ToString("F2", CultureInfo.InvariantCulture) : v.ToString(CultureInfo.InvariantCulture);
        return bold && best is { } b && v == b ? $"**{text}**" : text;
    }

    private static void AppendImportance(StringBuilder md, ComparisonResult result)
    {
        if (result.Importance.Count == 0) return;
        md.Append("\n## Layer importance on the dense model\n\n");
        md.Append("First-round scores of each method, normalised to [0, 1] per method (0: the layer it removes first). Higher is more important.\n\n");
        var layers = Enumerable.Range(0, result.OriginalLayerCount).ToArray();
        md.Append("| Method | ").Append(string.Join(" | ", layers.Select(l => l.ToString(CultureInfo.InvariantCulture)))).Append(" |\n");
        md.Append("|---|").Append(string.Concat(Enumerable.Repeat("---:|", layers.Length))).Append('\n');
        foreach (var imp in result.Importance)
        {
            var byLayer = imp.OriginalLayerIndices.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => imp.Normalized[x.i]);
            md.Append("| ").Append(imp.Method).Append(" | ")
                .Append(string.Join(" | ", layers.Select(l => byLayer.TryGetValue(l, out var v) ? v.ToString("F2", CultureInfo.InvariantCulture) : "–")))
                .Append(" |\n");
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        var folder = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(folder);
        var temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            File.WriteAllText(temp, text, new UTF8Encoding(false));
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}

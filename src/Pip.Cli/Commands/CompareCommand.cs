using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Cli.Infrastructure;
using Pip.Evaluation;
using Pip.Torch.Evaluation;
using Pip.Torch.Pruning;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>compare</c>: prunes a fresh copy of a model with every method at every ratio (same calibration set), evaluates
/// each pruned model and the dense one (perplexity on WikiText-2 / PTB, zero-shot accuracy), and writes the table of
/// the PIP paper's Table 2 (<c>comparison.md</c>, <c>comparison.json</c>), PNG charts and every run's pruning report.
/// </summary>
/// <remarks>Everything is written to a staging folder beside <c>--out</c> and moved into place at the end; a failed or cancelled run leaves nothing.</remarks>
internal static class CompareCommand
{
    /// <summary>The Markdown table's file name.</summary>
    public const string MarkdownFile = "comparison.md";

    /// <summary>The JSON result's file name.</summary>
    public const string JsonFile = "comparison.json";

    /// <summary>The folder of the pruning reports inside the output folder.</summary>
    public const string ReportsFolder = "reports";

    /// <summary>The <c>--ptb-join</c> values.</summary>
    public static readonly IReadOnlyList<string> PtbJoinNames = ["newlines", "space"];

    public static Command Create(CliContext context)
    {
        var model = new Option<string?>("--model", "-m")
        {
            Description = "The model folder (Hugging Face layout with tokenizer.json). Default: the demo model bundled with pip-prune (models/pip-demo next to the tool), when there is one.",
            HelpName = "DIR",
        };
        var output = CommonOptions.Out($"The folder to write {MarkdownFile}, {JsonFile}, the PNG charts and {ReportsFolder}/ to (atomically, at the end).");
        var methods = new Option<string>("--methods")
        {
            Description = $"Comma-separated methods: {string.Join(", ", ComparisonMethods.Keys)}; METRIC:STRATEGY (e.g. taylor:iterative); or the groups 'default' (PIP's Table 2: {string.Join(", ", ComparisonMethods.Defaults.Select(m => m.Key))}) and 'ablation' (Table 3: {string.Join(", ", ComparisonMethods.Ablation.Select(m => m.Key))}).",
            DefaultValueFactory = _ => "default",
            HelpName = "LIST",
        };
        var ratios = new Option<string>("--ratios")
        {
            Description = "Comma-separated fractions of all parameters to remove, each in (0, 1).",
            DefaultValueFactory = _ => string.Join(",", ComparisonConstants.DefaultRatios.Select(r => r.ToString(CultureInfo.InvariantCulture))),
            HelpName = "LIST",
        };
        var wikitext = new Option<string?>("--wikitext")
        {
            Description = "WikiText-2 file (wiki.test.tokens, wiki.valid.tokens or the raw release): lines joined with \"\\n\\n\" as LLM-Pruner and SLEB do.",
            HelpName = "FILE",
        };
        var ptb = new Option<string?>("--ptb") { Description = "PTB file (ptb.valid.txt, one sentence a line): lines stripped and joined (see --ptb-join).", HelpName = "FILE" };
        var ptbJoin = new Option<string>("--ptb-join")
        {
            Description = "How PTB sentences are joined: newlines (\"\\n\\n\", LLM-Pruner) or space (\" \", GPTQ/SparseGPT/Wanda).",
            DefaultValueFactory = _ => "newlines",
        };
        ptbJoin.AcceptOnlyFromAmong([.. PtbJoinNames]);
        var tasks = new Option<string?>("--tasks")
        {
            Description = $"Comma-separated zero-shot tasks as FORMAT=FILE (JSONL), FORMAT one of {string.Join(", ", ZeroShotTasks.All.Select(ZeroShotTasks.Name))}; LABEL:FORMAT=FILE names a task of your own written in that format (tables show LABEL).",
            HelpName = "NAME=FILE,...",
        };
        var maxItems = new Option<int?>("--max-items") { Description = "Evaluate only the first N items of each task.", HelpName = "N" }.AtLeast(1);
        var calibration = new Option<string?>("--calibration", "-c")
        {
            Description = "The UTF-8 calibration text (samples drawn from its paragraphs). Default: the calibration sample bundled with pip-prune (data/calibration/brown-sample.txt next to the tool).",
            HelpName = "FILE",
        };
        var unit = new Option<string>("--unit") { Description = "What a calibration unit is: a paragraph (lines between blank lines) or a non-empty line.", DefaultValueFactory = _ => "paragraph" };
        unit.AcceptOnlyFromAmong("paragraph", "line");
        var samples = new Option<int>("--samples") { Description = "Number of calibration samples (the same for every method).", DefaultValueFactory = _ => CalibrationConstants.DefaultSampleCount, HelpName = "N" }.AtLeast(1);
        var seed = new Option<int>("--seed") { Description = "The seed of the sample choice, the perturbations and random scores.", DefaultValueFactory = _ => PipelineConstants.DefaultSeed };
        var window = new Option<int>("--window")
        {
            Description = "Perplexity window in tokens: non-overlapping windows, the last partial one dropped (LLM-Pruner uses 128).",
            DefaultValueFactory = _ => CorpusWindowing.DefaultWindow,
            HelpName = "N",
        }.AtLeast(2);
        var batchSize = new Option<int>("--batch-size")
        {
            Description = "Most perplexity windows, or zero-shot requests, per forward pass (the results do not depend on it beyond rounding).",
            DefaultValueFactory = _ => 8,
            HelpName = "N",
        }.AtLeast(1);
        var sets = new Option<int>("--sets") { Description = "Perturbation sets per round of PIP (the consistency discriminator needs 2 or more).", DefaultValueFactory = _ => PipelineConstants.DefaultPerturbationSets, HelpName = "N" }.AtLeast(1);
        var maxTokens = new Option<int>("--max-tokens")
        {
            Description = "Longest token sequence per calibration sample (samples are cut at a word boundary to fit).",
            DefaultValueFactory = _ => TorchMetricConstants.DefaultMaxTokens,
            HelpName = "N",
        }.AtLeast(2);
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's torch_dtype where this device computes it fast, else float32).");
        var device = CommonOptions.Device();
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();
        var stream = CommonOptions.Stream();
        var memoryLimit = CommonOptions.MemoryLimit();

        var command = new Command("compare", "Prune a model with several methods at several ratios and compare them (perplexity, zero-shot accuracy, layer importance): PIP's Table 2.")
        {
            model, output, methods, ratios, wikitext, ptb, ptbJoin, tasks, maxItems, calibration, unit, samples, seed, window, batchSize, sets, maxTokens, dtype, device, stream, memoryLimit, overwrite, json,
        };
        CommandRunner.SetBody(command, context, async run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();

            // 1. Paths and options, before anything slow; every problem at once.
            var overwriting = run.Get(overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var modelFolder = ModelLoading.RequireModelFolder(ModelLoading.ModelFolderOrDefault(run.Get(model), context));
            var calibrationFile = ModelLoading.CalibrationFileOrDefault(run.Get(calibration), context);
            var errors = new List<string>();
            var options = new ComparisonOptions
            {
                Seed = run.Require(seed),
                PerturbationSets = run.Require(sets),
                MaxTokens = run.Require(maxTokens),
                PtbSeparator = run.Require(ptbJoin) == "space" ? PerplexityDatasets.GptqPtbSeparator : PerplexityDatasets.LlmPrunerPtbSeparator,
                Windowing = new CorpusWindowing { Window = run.Require(window), BatchSize = run.Require(batchSize) },
                ZeroShotBatchSize = run.Require(batchSize),
                MaxItems = run.Get(maxItems),
                Dtype = run.Get(dtype),
                Device = CommonOptions.CheckDevice(run.Require(device)),
            };
            try
            {
                options.Methods = [.. ComparisonMethods.ParseList(run.Require(methods))];
            }
            catch (ArgumentException e)
            {
                errors.Add("--methods: " + Plain(e));
            }

            options.Ratios = ParseRatios(run.Require(ratios), errors);
            if (run.Get(wikitext) is { } w) options.PerplexityDatasets.Add(new PerplexityDatasetFile(PerplexityDatasets.WikiText2Name, RequireFile(w, "--wikitext", "WikiText-2 file", errors)));
            if (run.Get(ptb) is { } p) options.PerplexityDatasets.Add(new PerplexityDatasetFile(PerplexityDatasets.PtbName, RequireFile(p, "--ptb", "PTB file", errors)));
            if (run.Get(tasks) is { } t) options.Tasks = ParseTasks(t, errors);
            if (options.PerplexityDatasets.Count == 0 && options.Tasks.Count == 0)
                errors.Add("Nothing to evaluate: give --wikitext, --ptb or --tasks.");
            if (errors.Count == 0)
            {
                try
                {
                    options.Validate();
                }
                catch (ArgumentException e)
                {
                    errors.Add(Plain(e));
                }
            }

            if (errors.Count > 0)
                throw new CliInputException($"{errors.Count} invalid option(s):{Environment.NewLine}  " + string.Join(Environment.NewLine + "  ", errors));

            // Every run streams the model when asked or when it would not fit: all comparison methods remove whole layers;
            // zero-shot scoring needs the model in memory.
            var streaming = ModelStreaming.ShouldStream(run, modelFolder, options.Dtype, options.Device, run.Get(stream), run.Get(memoryLimit),
                options.Tasks.Count == 0 ? null : "zero-shot tasks (--tasks) need the model in memory; a streamed comparison evaluates perplexity only (--wikitext, --ptb)");

            // 2. Calibration samples (the same set for every method).
            var calibrationSet = CalibrationSet.Load(calibrationFile, new CalibrationOptions
            {
                SampleCount = run.Require(samples),
                Seed = options.Seed,
                Unit = run.Require(unit) == "line" ? CalibrationUnit.Line : CalibrationUnit.Paragraph,
            }, ct);
            run.Logger.LogInformation("Comparing {Methods} at ratios {Ratios} on {Model}: {Runs} pruning runs, each on a fresh copy of the model.",
                string.Join(", ", options.Methods.Select(m => m.Key)), string.Join(", ", options.Ratios.Select(r => r.ToString(CultureInfo.InvariantCulture))),
                modelFolder, options.Methods.Count * options.Ratios.Count);

            // 3. The comparison.
            var progress = run.WithBars(new ProgressLogger(run.Logger), ProgressBars.Comparison);
            ComparisonResult result;
            if (!streaming) result = await Comparison.RunAsync(modelFolder, calibrationSet, options, progress, run.LoggerFactory, ct).ConfigureAwait(false);
            else
            {
                try
                {
                    result = await Comparison.RunStreamedAsync(modelFolder, calibrationSet, options, new Pip.Torch.Streaming.StreamingOptions { HeadChunkBytes = ModelStreaming.HeadChunkBytes },
                        progress, run.LoggerFactory, ct).ConfigureAwait(false);
                }
                catch (NotSupportedException e)
                {
                    throw new CliInputException($"Model folder '{modelFolder}' cannot be streamed: {e.Message}", e);
                }
            }

            // 4. Output: a staging folder beside --out, moved into place.
            ct.ThrowIfCancellationRequested();
            var parent = Path.GetDirectoryName(outFolder) ?? throw new CliInputException($"Output folder '{outFolder}' has no parent folder.");
            Directory.CreateDirectory(parent);
            // Named as the checkpoint writer names its temporary folders, so that a run that was killed leaves nothing the next one keeps.
            CheckpointWriter.ClearStaleTemporaryFolders(outFolder);
            var staging = CheckpointWriter.TemporarySiblingPath(outFolder);
            List<string> files;
            try
            {
                Directory.CreateDirectory(staging);
                files = WriteOutputs(result, staging);
                MoveIntoPlace(staging, outFolder);
            }
            finally
            {
                if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
            }

            var written = files.Select(f => Path.Combine(outFolder, f)).ToArray();
            run.Logger.LogInformation("Wrote {Folder} ({Files} files) in {Seconds:F1} s.", outFolder, written.Length, total.Elapsed.TotalSeconds);
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, new CompareResult(outFolder, written, result));
            else
            {
                run.Out.Write(ComparisonReport.ToMarkdown(result));
                run.Out.WriteLine();
                run.Out.WriteLine($"Wrote {outFolder}: {string.Join(", ", files)}");
                run.Out.Flush();
            }

            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Writes the Markdown, the JSON, the charts and the reports into a folder; returns the relative paths.</summary>
    internal static List<string> WriteOutputs(ComparisonResult result, string folder)
    {
        var files = new List<string>();
        var charts = Charts.WriteAll(result, folder).Select(f => Path.GetRelativePath(folder, f)).ToList();
        var markdown = ComparisonReport.ToMarkdown(result);
        if (charts.Count > 0)
        {
            markdown += "\n## Charts\n\n" + string.Concat(charts.Select(c => $"![{Path.GetFileNameWithoutExtension(c)}]({c})\n"));
        }

        File.WriteAllText(Path.Combine(folder, MarkdownFile), markdown);
        files.Add(MarkdownFile);
        ComparisonReport.WriteJson(result, Path.Combine(folder, JsonFile));
        files.Add(JsonFile);
        files.AddRange(charts);
        foreach (var row in result.Rows.Where(r => r.Report is not null))
        {
            var name = Path.Combine(ReportsFolder, $"{row.MethodKey}-{ComparisonReport.RatioLabel(row.TargetRatio).TrimEnd('%')}.json");
            PruningReportJson.Write(row.Report!, Path.Combine(folder, name));
            files.Add(name);
        }

        return files;
    }

    /// <summary>Moves a finished staging folder to the output folder, replacing an existing one (checked before the run).</summary>
    private static void MoveIntoPlace(string staging, string outFolder)
    {
        if (!Directory.Exists(outFolder))
        {
            Directory.Move(staging, outFolder);
            return;
        }

        var old = CheckpointWriter.TemporarySiblingPath(outFolder, old: true);
        Directory.Move(outFolder, old);
        try
        {
            Directory.Move(staging, outFolder);
        }
        catch
        {
            Directory.Move(old, outFolder);
            throw;
        }

        Directory.Delete(old, recursive: true);
    }

    private static string RequireFile(string file, string option, string what, List<string> errors)
    {
        var full = Path.GetFullPath(file);
        if (Directory.Exists(full)) errors.Add($"{option}: {what} '{full}' is a folder, not a file.");
        else if (!File.Exists(full)) errors.Add($"{option}: {what} '{full}' does not exist.");
        return full;
    }

    internal static List<double> ParseRatios(string text, List<string> errors)
    {
        var ratios = new List<double>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (double.TryParse(item, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r > 0 && r < 1) ratios.Add(r);
            else errors.Add($"--ratios: '{item}' is not a number in (0, 1).");
        }

        if (ratios.Count == 0 && errors.Count == 0) errors.Add("--ratios: give at least one ratio.");
        return ratios;
    }

    internal static List<ZeroShotTaskFile> ParseTasks(string text, List<string> errors)
    {
        var tasks = new List<ZeroShotTaskFile>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var parts = item.Split('=', 2, StringSplitOptions.TrimEntries);
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                errors.Add($"--tasks: '{item}' is not FORMAT=FILE or LABEL:FORMAT=FILE.");
                continue;
            }

            var head = parts[0].Split(':', 2, StringSplitOptions.TrimEntries);
            string? label = head.Length == 2 ? head[0] : null;
            if (label is { Length: 0 })
            {
                errors.Add($"--tasks: '{item}' has an empty LABEL before ':'.");
                continue;
            }

            ZeroShotTaskKind kind;
            try
            {
                kind = ZeroShotTasks.Parse(head[^1]);
            }
            catch (ArgumentException e)
            {
                errors.Add("--tasks: " + Plain(e));
                continue;
            }

            tasks.Add(new ZeroShotTaskFile(kind, RequireFile(parts[1], "--tasks", $"{label ?? ZeroShotTasks.Name(kind)} file", errors), label));
        }

        return tasks;
    }

    private static string Plain(ArgumentException e) =>
        e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);

    /// <summary>Logs comparison progress: runs at Information, pruning and evaluation steps at Debug.</summary>
    private sealed class ProgressLogger(ILogger logger) : IProgress<ComparisonProgress>
    {
        public void Report(ComparisonProgress value)
        {
            var ratio = value.Ratio is { } r ? ComparisonReport.RatioLabel(r) : "dense";
            switch (value.Stage)
            {
                case ComparisonStage.Loading:
                    logger.LogDebug("Run {Run}/{Runs}: loading a fresh copy of the model for {Method} ({Ratio}).", value.Run, value.RunCount - 1, value.Method, ratio);
                    break;
                case ComparisonStage.RunCompleted:
                    break;
                default:
                    if (value.Done == value.Total || value.Done == 1)
                        logger.LogDebug("Run {Run}/{Runs} {Method} ({Ratio}): {Stage} {Item} {Done}/{Total}.", value.Run, value.RunCount - 1, value.Method, ratio, value.Stage, value.Item, value.Done, value.Total);
                    break;
            }
        }
    }
}

/// <summary>The result of <c>compare</c> with <c>--json</c>.</summary>
internal sealed record CompareResult(string Out, IReadOnlyList<string> Files, ComparisonResult Comparison);

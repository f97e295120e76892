using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;
using Pip.Torch.Evaluation;

namespace Pip.Cli.Commands;

/// <summary><c>eval</c>: perplexity of a model on a text file, with fixed-length (optionally strided) windows.</summary>
internal static class EvalCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var text = new Option<string>("--text", "-t") { Description = "The UTF-8 text file to evaluate on (tokenized whole, with the model's tokenizer).", Required = true, HelpName = "FILE" };
        var window = new Option<int>("--window") { Description = "The window length in tokens.", DefaultValueFactory = _ => 512, HelpName = "N" }.AtLeast(2);
        var stride = new Option<int?>("--stride")
        {
            Description = "The stride in tokens (1 to the window length): overlapping windows, each scoring only tokens not scored before. Default: non-overlapping windows.",
            HelpName = "N",
        }.AtLeast(1);
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Evaluate only the first N tokens of the text.", HelpName = "N" }.AtLeast(2);
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's torch_dtype).");
        var device = CommonOptions.Device();
        var stream = CommonOptions.Stream();
        var memoryLimit = CommonOptions.MemoryLimit();
        var json = CommonOptions.Json();

        var command = new Command("eval", "Measure the perplexity of a model on a text file.")
        {
            model, text, window, stride, maxTokens, dtype, device, stream, memoryLimit, CommonOptions.AllowNonFinite(), json,
        };
        CommandRunner.SetBody(command, context, run =>
        {
            var ct = run.CancellationToken;
            var windowLength = run.Require(window);
            var strideLength = run.Get(stride);
            if (strideLength > windowLength)
                throw new CliInputException($"--stride ({strideLength}) must not exceed --window ({windowLength}).");
            var textFile = Path.GetFullPath(run.Require(text));
            var content = ModelLoading.ReadText(textFile, "Text file");

            using var lm = ModelStreaming.LoadOrStream(run, ModelLoading.ModelFolderOrDefault(run.Get(model), context), run.Get(dtype), run.Require(device), run.Get(stream), run.Get(memoryLimit));
            var tokenizer = lm.Tokenizer;
            var clock = Stopwatch.StartNew();
            IReadOnlyList<int> tokens = tokenizer.Encode(content);
            if (run.Get(maxTokens) is { } max && tokens.Count > max) tokens = tokens.Take(max).ToArray();
            run.Logger.LogInformation("Tokenized {File}: {Tokens:N0} tokens in {Seconds:F1} s.", textFile, tokens.Count, clock.Elapsed.TotalSeconds);
            if (tokens.Count < 2)
                throw new CliInputException($"Text file '{textFile}' gives {tokens.Count} token(s); at least 2 are needed.");
            var outside = tokens.FirstOrDefault(t => t < 0 || t >= lm.Config.VocabSize, -1);
            if (outside >= 0)
                throw new CliInputException($"Model folder '{lm.Folder}': its tokenizer gives token id {outside}, outside the model's vocabulary of {lm.Config.VocabSize}.");

            var windowsTotal = Perplexity.PlanWindows(tokens.Count, windowLength, strideLength).Count;
            var progress = run.WithBars(new ProgressLogger(run.Logger, windowsTotal), ProgressBars.Perplexity);
            clock.Restart();
            // In memory: window by window; streamed: windows batched so that each layer is read once per batch.
            var result = lm.Resident is { } resident
                ? Perplexity.Evaluate(resident.Model, tokens, windowLength, strideLength, progress, ct)
                : lm.Engine.Perplexity([tokens], windowLength, strideLength, progress: progress, cancellationToken: ct);
            var seconds = clock.Elapsed.TotalSeconds;

            var report = new EvalResult(lm.Folder, textFile, CommonOptions.DtypeName(lm.ComputeType), run.Require(device).ToString(), windowLength, strideLength,
                result.Nll, result.Perplexity, result.TokenCount, result.Windows, Math.Round(seconds, 3), Math.Round(result.TokenCount / Math.Max(seconds, 1e-9), 1));
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, report);
            else
            {
                ResultWriter.WriteTable(run.Out,
                [
                    ("Model", report.Model),
                    ("Text", report.Text),
                    ("Dtype / device", $"{report.Dtype} / {report.Device}"),
                    ("Window / stride", $"{report.Window} / {(report.Stride is { } s ? s.ToString(CultureInfo.InvariantCulture) : "none (non-overlapping)")}"),
                    ("Mean NLL", ResultWriter.Number(report.Nll, 4) + " nats/token"),
                    ("Perplexity", ResultWriter.Number(report.Perplexity, 3)),
                    ("Scored tokens", ResultWriter.Count(report.Tokens)),
                    ("Windows", ResultWriter.Count(report.Windows)),
                    ("Time", $"{ResultWriter.Number(report.Seconds, 2)} s ({ResultWriter.Number(report.TokensPerSecond, 1)} tokens/s)"),
                ]);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Logs evaluation progress synchronously: every window at Debug, about every tenth at Information.</summary>
    private sealed class ProgressLogger(ILogger logger, int total) : IProgress<PerplexityProgress>
    {
        private readonly int _step = Math.Max(1, total / 10);

        public void Report(PerplexityProgress value)
        {
            var level = value.WindowsDone % _step == 0 && value.WindowsDone < value.WindowsTotal ? LogLevel.Information : LogLevel.Debug;
            logger.Log(level, "Window {Done}/{Total}: {Tokens:N0} tokens scored, running perplexity {Ppl:F3}.",
                value.WindowsDone, value.WindowsTotal, value.TokensScored, Math.Exp(value.RunningNll));
        }
    }
}

/// <summary>The result of <c>eval</c>.</summary>
internal sealed record EvalResult(string Model, string Text, string Dtype, string Device, int Window, int? Stride, double Nll, double Perplexity,
    long Tokens, int Windows, double Seconds, double TokensPerSecond);

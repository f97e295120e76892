using System.CommandLine;
using System.ComponentModel.DataAnnotations;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;
using Pip.Torch;
using Pip.Torch.Training.Lora;
using Pip.Training;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>recover</c>: LoRA recovery of a (pruned) model on a plain-text file: adapters on the linear layers are trained
/// (the base weights frozen), merged into the weights, and the model is saved as a standard checkpoint.
/// </summary>
/// <remarks>
/// Each non-empty line of the text is one document: its tokens (with the tokenizer's BOS when it adds one) and EOS are
/// concatenated and cut into sequences of <c>--seq-len</c> tokens. Everything that can be checked is checked before the
/// model work; the output folder is written atomically at the end and never replaces the model folder.
/// </remarks>
internal static class RecoverCommand
{
    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var output = CommonOptions.Out("The folder to write the recovered model to (config, safetensors, tokenizer files), atomically.");
        var text = new Option<string>("--text", "-t") { Description = "The UTF-8 training text: one document per non-empty line.", Required = true, HelpName = "FILE" };
        var valid = new Option<string?>("--valid")
        {
            Description = "A held-out UTF-8 text (same format) for the validation loss before, during and after training. Default: none, or --holdout.",
            HelpName = "FILE",
        };
        var holdout = new Option<int>("--holdout")
        {
            Description = "Without --valid: hold out every N-th line of --text for validation (0: no validation).",
            DefaultValueFactory = _ => 0,
            HelpName = "N",
        }.AtLeast(0);
        var rank = new Option<int>("--rank", "-r") { Description = "The LoRA rank r.", DefaultValueFactory = _ => LoraConstants.DefaultRank, HelpName = "R" };
        var alpha = new Option<double>("--alpha") { Description = "LoRA alpha: the update is scaled by alpha / r.", DefaultValueFactory = _ => LoraConstants.DefaultAlpha, HelpName = "A" };
        var dropout = new Option<double>("--dropout") { Description = "Dropout on the adapters' input while training, in [0, 1).", DefaultValueFactory = _ => LoraConstants.DefaultDropout, HelpName = "P" };
        var targets = new Option<string>("--targets")
        {
            Description = $"Comma-separated linear modules to adapt (of {string.Join(", ", LoraConstants.KnownTargetModules)}).",
            DefaultValueFactory = _ => string.Join(',', LoraConstants.DefaultTargetModules),
            HelpName = "NAMES",
        };
        var steps = new Option<int>("--steps") { Description = "Optimizer steps.", DefaultValueFactory = _ => LoraConstants.DefaultMaxSteps, HelpName = "N" };
        var learningRate = new Option<double>("--lr") { Description = "The peak learning rate (linear warm-up, then cosine decay to a tenth).", DefaultValueFactory = _ => LoraConstants.DefaultLearningRate, HelpName = "LR" };
        var warmup = new Option<int?>("--warmup") { Description = "Warm-up steps (default: a tenth of --steps, at most 100).", HelpName = "N" };
        var batchSize = new Option<int>("--batch-size") { Description = "Sequences per optimizer step.", DefaultValueFactory = _ => LoraConstants.DefaultBatchSize, HelpName = "N" };
        var seqLen = new Option<int>("--seq-len") { Description = "Tokens per training sequence.", DefaultValueFactory = _ => LoraConstants.DefaultSequenceLength, HelpName = "N" }.AtLeast(2);
        var maxTokens = new Option<int?>("--max-tokens") { Description = "Use only the first N training tokens.", HelpName = "N" }.AtLeast(2);
        var seed = new Option<int>("--seed") { Description = "The seed of the adapters' initialisation and of the data order.", DefaultValueFactory = _ => LoraConstants.DefaultSeed };
        var checkpoint = new Option<string?>("--checkpoint")
        {
            Description = "A folder for a resumable checkpoint of the adapters (written every --checkpoint-every steps and on Ctrl-C); a run with the same settings continues from it.",
            HelpName = "DIR",
        };
        var checkpointEvery = new Option<int>("--checkpoint-every") { Description = "With --checkpoint: steps between checkpoints.", DefaultValueFactory = _ => 50, HelpName = "N" }.AtLeast(1);
        var timeLimit = new Option<double?>("--time-limit") { Description = "Stop training (gracefully) after this many minutes.", HelpName = "MINUTES" };
        var adaptersOut = new Option<string?>("--adapters-out") { Description = "Also write the trained adapters alone, in PEFT's format (adapter_model.safetensors, adapter_config.json), to this folder.", HelpName = "DIR" };
        var dtype = CommonOptions.Dtype("The type to compute in (default: the checkpoint's torch_dtype where this device computes it fast, else float32). The adapters are float32.");
        var saveDtype = CommonOptions.Dtype("The type to store the recovered weights in (default: the checkpoint's torch_dtype).", "--save-dtype");
        var device = CommonOptions.Device();
        var overwrite = CommonOptions.Overwrite();
        var json = CommonOptions.Json();

        var command = new Command("recover", "Recover a (pruned) model with LoRA on a text file: train low-rank adapters on the linear layers, merge them, save the model.")
        {
            model, output, text, valid, holdout, rank, alpha, dropout, targets, steps, learningRate, warmup, batchSize, seqLen, maxTokens, seed,
            checkpoint, checkpointEvery, timeLimit, adaptersOut, dtype, saveDtype, device, CommonOptions.AllowNonFinite(), overwrite, json,
        };
        CommandRunner.SetBody(command, context, async run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();

            // 1. Paths, before anything slow.
            var overwriting = run.Get(overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var modelFolder = ModelLoading.RequireModelFolder(ModelLoading.ModelFolderOrDefault(run.Get(model), context));
            if (string.Equals(modelFolder, outFolder, StringComparison.Ordinal))
                throw new CliInputException($"Output folder '{outFolder}' is the model folder; write the recovered model to another folder.");
            string? adapterFolder = run.Get(adaptersOut) is { } a ? ModelLoading.CheckOutputFolder(a, overwriting) : null;
            if (adapterFolder is not null && (adapterFolder == outFolder || adapterFolder == modelFolder))
                throw new CliInputException($"Adapter folder '{adapterFolder}' must differ from the model and output folders.");
            var lines = TrainingText.ReadLines(run.Require(text), run.Get(valid), run.Require(holdout));

            // 2. Every option, validated together.
            var stepCount = run.Require(steps);
            var options = new LoraOptions
            {
                Rank = run.Require(rank),
                Alpha = run.Require(alpha),
                Dropout = run.Require(dropout),
                TargetModules = run.Require(targets).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList(),
                Seed = run.Require(seed),
                MergeAfterTraining = adapterFolder is null,
            };
            var training = LoraConstants.DefaultTraining();
            training.MaxSteps = stepCount;
            training.LearningRate = run.Require(learningRate);
            training.WarmupSteps = run.Get(warmup) ?? Math.Min(100, stepCount / 10);
            training.BatchSize = run.Require(batchSize);
            training.Seed = options.Seed;
            training.LogEvery = Math.Max(1, stepCount / 20);
            training.EvaluateEvery = lines.Valid is null ? 0 : Math.Max(1, stepCount / 4);
            training.MaxValidationSequences = 64;
            if (run.Get(checkpoint) is { } c)
            {
                training.CheckpointFolder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(c));
                training.CheckpointEvery = run.Require(checkpointEvery);
            }
            if (run.Get(timeLimit) is { } minutes)
            {
                if (!(minutes > 0)) throw new CliInputException($"--time-limit must be positive, got {minutes.ToString(CultureInfo.InvariantCulture)}.");
                training.MaxDuration = TimeSpan.FromMinutes(minutes);
            }
            options.Training = training;
            if (training.CheckpointFolder is { } checkpointFolder && (checkpointFolder == outFolder || checkpointFolder == modelFolder || checkpointFolder == adapterFolder))
                throw new CliInputException($"Checkpoint folder '{checkpointFolder}' must differ from the model, output and adapter folders.");
            try
            {
                options.Validate();
            }
            catch (ValidationException e)
            {
                throw new CliInputException(WithOptionNames(e.Message));
            }

            // 3. The model and the tokens.
            using var lm = ModelLoading.Load(run, modelFolder, run.Get(dtype), run.Require(device));
            var tokenizer = ModelLoading.RequireTokenizer(lm);
            var storedType = run.Get(saveDtype) ?? TorchCausalLM.DtypeOf(lm.Config);
            var sequenceLength = run.Require(seqLen);
            var (train, validation) = TrainingText.Pack(lines, tokenizer, lm, sequenceLength, training.BatchSize, run.Get(maxTokens), run.Logger);

            // 4. Training.
            var clock = Stopwatch.StartNew();
            var result = await LoraRecovery.RunAsync(lm, train, validation, options, progress: null, run.Logger, ct).ConfigureAwait(false);
            var trainingSeconds = clock.Elapsed.TotalSeconds;

            // 5. Output: the adapters (when asked), then the merged model, each atomically.
            ct.ThrowIfCancellationRequested();
            if (result.Adapters is { } adapters)
            {
                using (adapters)
                {
                    adapters.SaveAdapters(adapterFolder!, modelFolder, overwrite: overwriting);
                    run.Logger.LogInformation("Wrote the adapters to {Folder}.", adapterFolder);
                    adapters.Merge();
                }
            }
            clock.Restart();
            ModelLoading.Save(run, lm, outFolder, storedType, overwriting);

            var r = result.Training;
            var summary = new RecoverResult(
                Model: modelFolder,
                Output: outFolder,
                Adapters: adapterFolder,
                Text: lines.TextFile,
                Validation: lines.ValidationDescription,
                Rank: options.Rank,
                Alpha: options.Alpha,
                Dropout: options.Dropout,
                Targets: [.. options.TargetModules],
                AdaptedModules: result.AdaptedModules,
                TrainableParameters: result.TrainableParameters,
                Parameters: result.BaseParameters,
                TrainSequences: train.Count,
                SequenceLength: sequenceLength,
                Steps: r.Steps,
                StopReason: r.StopReason.ToString(),
                Resumed: result.Resumed,
                TokensSeen: r.TokensSeen,
                FirstTrainLoss: r.History.Count == 0 ? null : Math.Round(r.History[0].TrainLoss, 6),
                FinalTrainLoss: r.History.Count == 0 ? null : Math.Round(r.FinalTrainLoss, 6),
                ValidationLossBefore: Round(result.InitialValidationLoss),
                ValidationLossAfter: Round(result.FinalValidationLoss),
                PerplexityBefore: Round(result.InitialValidationLoss is { } b ? Math.Exp(b) : null),
                PerplexityAfter: Round(result.FinalValidationLoss is { } f ? Math.Exp(f) : null),
                SaveDtype: CommonOptions.DtypeName(storedType),
                TrainingSeconds: Math.Round(trainingSeconds, 3),
                Seconds: Math.Round(total.Elapsed.TotalSeconds, 3));
            if (run.Get(json)) ResultWriter.WriteJson(run.Out, summary);
            else WriteTable(run.Out, summary);
            return ExitCodes.Success;
        });
        return command;
    }

    private static double? Round(double? value) => value is { } x ? Math.Round(x, 6) : null;

    /// <summary>Replaces the option classes' member names in validation messages with the command-line options.</summary>
    private static string WithOptionNames(string message) => message
        .Replace("The field Rank", "--rank", StringComparison.Ordinal)
        .Replace("The field Alpha", "--alpha", StringComparison.Ordinal)
        .Replace("The field Dropout", "--dropout", StringComparison.Ordinal)
        .Replace("TargetModules:", "--targets:", StringComparison.Ordinal)
        .Replace("The field LearningRate", "--lr", StringComparison.Ordinal)
        .Replace("The field MaxSteps", "--steps", StringComparison.Ordinal)
        .Replace("The field BatchSize", "--batch-size", StringComparison.Ordinal)
        .Replace("WarmupSteps (", "--warmup (", StringComparison.Ordinal)
        .Replace("The field WarmupSteps", "--warmup", StringComparison.Ordinal)
        .Replace("MaxSteps (", "--steps (", StringComparison.Ordinal);

    private static void WriteTable(TextWriter output, RecoverResult r)
    {
        static string Loss(double? loss, double? ppl) => loss is null ? "n/a" : $"{ResultWriter.Number(loss.Value, 4)} (perplexity {ResultWriter.Number(ppl!.Value, 2)})";
        List<(string, string)> rows =
        [
            ("Model", r.Model),
            ("Recovered model", r.Output),
        ];
        if (r.Adapters is not null) rows.Add(("Adapters", r.Adapters));
        rows.Add(("Training text", $"{r.Text} ({ResultWriter.Count(r.TrainSequences)} sequences of {r.SequenceLength} tokens)"));
        rows.Add(("Validation", r.Validation ?? "none"));
        rows.Add(("LoRA", $"rank {r.Rank}, alpha {r.Alpha.ToString(CultureInfo.InvariantCulture)}, dropout {r.Dropout.ToString(CultureInfo.InvariantCulture)} on {r.AdaptedModules} modules ({string.Join(", ", r.Targets)})"));
        rows.Add(("Trainable parameters", $"{ResultWriter.Count(r.TrainableParameters)} ({ResultWriter.Number(100.0 * r.TrainableParameters / r.Parameters, 2)} % of {ResultWriter.Count(r.Parameters)})"));
        rows.Add(("Steps", $"{r.Steps} ({r.StopReason}{(r.Resumed ? ", resumed" : "")}), {ResultWriter.Count(r.TokensSeen)} tokens"));
        rows.Add(("Train loss", r.FirstTrainLoss is null ? "n/a" : $"{ResultWriter.Number(r.FirstTrainLoss.Value, 4)} → {ResultWriter.Number(r.FinalTrainLoss!.Value, 4)}"));
        rows.Add(("Validation loss before", Loss(r.ValidationLossBefore, r.PerplexityBefore)));
        rows.Add(("Validation loss after", Loss(r.ValidationLossAfter, r.PerplexityAfter)));
        rows.Add(("Saved as", r.SaveDtype));
        rows.Add(("Time", $"{ResultWriter.Number(r.Seconds, 1)} s (training {ResultWriter.Number(r.TrainingSeconds, 1)} s)"));
        ResultWriter.WriteTable(output, rows);
    }
}

/// <summary>The result of <c>recover</c>.</summary>
internal sealed record RecoverResult(string Model, string Output, string? Adapters, string Text, string? Validation, int Rank, double Alpha, double Dropout,
    IReadOnlyList<string> Targets, int AdaptedModules, long TrainableParameters, long Parameters, int TrainSequences, int SequenceLength, long Steps,
    string StopReason, bool Resumed, long TokensSeen, double? FirstTrainLoss, double? FinalTrainLoss, double? ValidationLossBefore, double? ValidationLossAfter,
    double? PerplexityBefore, double? PerplexityAfter, string SaveDtype, double TrainingSeconds, double Seconds);

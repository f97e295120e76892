using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Pip.Cli.Infrastructure;
using Pip.Torch;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using Pip.Torch.Training.Idea;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Cli.Commands;

/// <summary>
/// <c>idea</c>: continued training of an existing model with IDEA Prune (<see cref="IdeaPrune"/>): under one
/// learning-rate schedule (no warm-up by default), the FFN width of every layer is shrunk gradually to
/// <c>--target-intermediate</c> inside a window of the run (EMA gradient-sensitivity scores, masks), the steps after
/// the window recover, and the masked neurons are then removed physically; the model is saved as a standard
/// checkpoint with the new <c>intermediate_size</c>. Optionally the loss is distillation from a teacher
/// (<c>--kd-teacher</c>, e.g. the model folder itself: the dense model before pruning).
/// </summary>
/// <remarks>
/// The text is read as by <c>recover</c> (<see cref="TrainingText"/>). Everything that can be checked is checked before
/// the weights are loaded; the input folders are never written; the output folder is written atomically at the end,
/// and only when the width reached the target (a run stopped earlier by <c>--time-limit</c> leaves its checkpoint to
/// be resumed instead).
/// </remarks>
internal static class IdeaCommand
{
    /// <summary>The default start of the pruning window, as a fraction of the steps: 0.3.</summary>
    public const double DefaultStartFraction = 0.3;

    /// <summary>The default end of the pruning window, as a fraction of the steps: 0.6 (the rest recovers).</summary>
    public const double DefaultEndFraction = 0.6;

    /// <summary>The names of the IDEA Prune options' members on the command line.</summary>
    private static readonly IReadOnlyDictionary<string, string> PruningNames = new Dictionary<string, string>
    {
        [nameof(IdeaPruneOptions.TargetIntermediateSize)] = "--target-intermediate",
        [nameof(IdeaPruneOptions.UpdateInterval)] = "--interval",
        [nameof(IdeaPruneOptions.EmaBeta)] = "--ema",
        [nameof(IdeaPruneOptions.StartStep)] = "the window's first step (--start-fraction × --steps)",
        [nameof(IdeaPruneOptions.EndStep)] = "the window's end step (--end-fraction × --steps)",
    };

    public static Command Create(CliContext context)
    {
        var model = CommonOptions.Model();
        var output = CommonOptions.Out("The folder to write the pruned and trained model to (config, safetensors, tokenizer files), atomically.");
        var target = new Option<int>("--target-intermediate")
        {
            Description = "The intermediate (FFN) size every layer keeps at the end, below the model's intermediate_size.",
            Required = true,
            HelpName = "N",
        };
        var startFraction = new Option<double>("--start-fraction")
        {
            Description = "The start of the pruning window, as a fraction of --steps.",
            DefaultValueFactory = _ => DefaultStartFraction,
            HelpName = "F",
        };
        var endFraction = new Option<double>("--end-fraction")
        {
            Description = "The end of the pruning window (the width reaches the target), as a fraction of --steps; later steps recover.",
            DefaultValueFactory = _ => DefaultEndFraction,
            HelpName = "F",
        };
        var interval = new Option<int>("--interval")
        {
            Description = "Steps between two score-and-mask updates inside the window.",
            DefaultValueFactory = _ => IdeaPruneConstants.DefaultUpdateInterval,
            HelpName = "N",
        };
        var ema = new Option<double>("--ema")
        {
            Description = "β of the exponential moving average of the neuron scores, s ← β·s + (1 − β)·new, in [0, 1).",
            DefaultValueFactory = _ => IdeaPruneConstants.DefaultEmaBeta,
            HelpName = "BETA",
        };
        var shape = new Option<string>("--shape")
        {
            Description = "The shape of the kept-width schedule inside the window: cubic (fast at first, as gradual magnitude pruning) or linear.",
            DefaultValueFactory = _ => IdeaPruneConstants.DefaultShape.ToString().ToLowerInvariant(),
        };
        shape.AcceptOnlyFromAmong("cubic", "linear");
        var kdTeacher = new Option<string?>("--kd-teacher")
        {
            Description = "Train on knowledge distillation from this teacher folder (same vocabulary and tokenizer), e.g. the --model folder itself (the dense model). Default: the plain language-model loss.",
            HelpName = "DIR",
        };
        var alpha = FineTuningOptions.Alpha(withDefault: false, " Needs --kd-teacher.");
        var temperature = FineTuningOptions.Temperature(withDefault: false, " Needs --kd-teacher.");
        var o = FineTuningOptions.Create(defaultWarmup: 0);

        var command = new Command("idea", "Continue training a model with IDEA Prune: shrink its FFN width gradually to --target-intermediate within one schedule, recover, remove the pruned neurons, save it.");
        foreach (var option in new Option[] { model, output }.Concat(o.DataOptions)
            .Concat([target, startFraction, endFraction, interval, ema, shape, kdTeacher, alpha, temperature]).Concat(o.RunOptions))
            command.Options.Add(option);

        CommandRunner.SetBody(command, context, run =>
        {
            var ct = run.CancellationToken;
            var total = Stopwatch.StartNew();

            // 1. Paths, before anything slow.
            var overwriting = run.Require(o.Overwrite);
            var outFolder = ModelLoading.CheckOutputFolder(run.Require(output), overwriting);
            var modelFolder = ModelLoading.RequireModelFolder(ModelLoading.ModelFolderOrDefault(run.Get(model), context));
            var teacherFolder = run.Get(kdTeacher) is { } k ? ModelLoading.RequireModelFolder(k) : null;
            if (outFolder == modelFolder || outFolder == teacherFolder)
                throw new CliInputException($"Output folder '{outFolder}' is the {(outFolder == modelFolder ? "model" : "teacher")} folder; write the pruned model to another folder.");
            var lines = o.ReadLines(run);
            var config = TeacherModels.ReadConfig(modelFolder);

            // 2. Every option, validated together.
            var problems = new List<string>();
            var training = o.CreateTraining(run, lines.Valid is not null, problems);
            var steps = training.MaxSteps;
            var from = run.Require(startFraction);
            var to = run.Require(endFraction);
            var pruning = new IdeaPruneOptions
            {
                TargetIntermediateSize = run.Require(target),
                UpdateInterval = run.Require(interval),
                EmaBeta = run.Require(ema),
                Shape = Enum.Parse<WidthScheduleShape>(run.Require(shape), ignoreCase: true),
            };
            bool fractionsValid = true;
            if (!(from >= 0 && from < 1))
            {
                problems.Add($"--start-fraction must be in [0, 1), got {from.ToString(CultureInfo.InvariantCulture)}.");
                fractionsValid = false;
            }
            if (!(to > 0 && to <= 1))
            {
                problems.Add($"--end-fraction must be in (0, 1], got {to.ToString(CultureInfo.InvariantCulture)}.");
                fractionsValid = false;
            }
            if (fractionsValid && to <= from)
            {
                problems.Add($"--end-fraction ({to.ToString(CultureInfo.InvariantCulture)}) must be greater than --start-fraction ({from.ToString(CultureInfo.InvariantCulture)}).");
                fractionsValid = false;
            }
            if (fractionsValid && steps >= 1)
            {
                pruning.StartStep = (int)Math.Round(steps * from, MidpointRounding.AwayFromZero);
                pruning.EndStep = Math.Min(steps, (int)Math.Round(steps * to, MidpointRounding.AwayFromZero));
                if (pruning.EndStep <= pruning.StartStep)
                {
                    problems.Add($"--start-fraction {from.ToString(CultureInfo.InvariantCulture)} and --end-fraction {to.ToString(CultureInfo.InvariantCulture)} of --steps {steps} leave no step to prune in; widen the window or train longer.");
                    (pruning.StartStep, pruning.EndStep) = (0, 1);
                }
            }
            problems.AddRange(OptionProblems.Of(pruning, PruningNames));
            var widths = Enumerable.Range(0, config.NumHiddenLayers).Select(l => config.ShapeOf(l).IntermediateSize).Distinct().ToList();
            if (widths.Count > 1)
                problems.Add($"Model folder '{modelFolder}' has layers of different intermediate sizes ({string.Join(", ", widths)}, per_layer_config); IDEA Prune needs one intermediate size in every layer.");
            else if (pruning.TargetIntermediateSize >= widths[0])
                problems.Add($"--target-intermediate ({pruning.TargetIntermediateSize}) must be below the intermediate_size of model folder '{modelFolder}' ({widths[0]}).");
            DistillationOptions? distillation = null;
            if (teacherFolder is not null) distillation = FineTuningOptions.CreateDistillation(run, alpha, temperature, problems);
            else
            {
                var orphans = new Option[] { alpha, temperature }.Where(x => run.ParseResult.GetResult(x) is { Implicit: false }).Select(x => x.Name).ToList();
                if (orphans.Count > 0) problems.Add($"{string.Join(" and ", orphans)} need{(orphans.Count == 1 ? "s" : "")} --kd-teacher.");
            }
            if (training.CheckpointFolder is { } checkpointFolder && (checkpointFolder == outFolder || checkpointFolder == modelFolder || checkpointFolder == teacherFolder))
                problems.Add($"Checkpoint folder '{checkpointFolder}' must differ from the model, teacher and output folders.");
            OptionProblems.ThrowIfAny(problems);

            // 3. The teacher's vocabulary, the model and the tokens, the teacher.
            if (teacherFolder is not null) TeacherModels.CheckSameVocabulary(teacherFolder, TeacherModels.ReadConfig(teacherFolder), modelFolder, config);
            using var lm = o.LoadModel(run, modelFolder);
            var tokenizer = ModelLoading.RequireTokenizer(lm);
            if (teacherFolder is not null) TeacherModels.CheckSameTokenizer(teacherFolder, modelFolder, tokenizer, lines, run.Logger);
            var storedType = o.StoredType(run, lm);
            var sequenceLength = run.Require(o.SequenceLength);
            var (train, validation) = o.Pack(run, lines, tokenizer, lm, training);
            using var teacherLm = teacherFolder is null ? null : o.LoadTeacher(run, teacherFolder);
            double? teacherLoss = teacherLm is null || validation is null ? null : TeacherModels.ValidationLoss(teacherLm.Module, validation, training.MaxValidationSequences, training.BatchSize, ct);
            var parametersBefore = lm.ParameterCount;
            var widthBefore = lm.Config.IntermediateSize;
            run.Logger.LogInformation("IDEA Prune: intermediate size {Before} → {Target} in steps [{Start}, {End}) of {Steps}, every {Interval} steps, {Shape} schedule{Kd}.",
                widthBefore, pruning.TargetIntermediateSize, pruning.StartStep, pruning.EndStep, steps, pruning.UpdateInterval, run.Require(shape),
                teacherFolder is null ? "" : $", distilling from {teacherFolder}");

            // 4. Training with gradual pruning, then the physical pruning.
            var clock = Stopwatch.StartNew();
            // As IdeaPrune.Train, with the hook and trainer at hand (whether the run resumed is reported).
            var loss = teacherLm is null ? null : DistillationLoss.Create(teacherLm.Module, distillation!);
            var hook = new IdeaPruneHook(lm.Module, pruning, run.Logger);
            TrainingResult r;
            bool resumed;
            using (var trainer = new CausalLMTrainer(lm.Module, training, run.Logger, loss, [hook]))
                (r, resumed) = FineTuningOptions.Train(trainer, train, validation, run);
            var trainingSeconds = clock.Elapsed.TotalSeconds;
            if (!hook.IsComplete)
                throw new CliInputException($"Training stopped at step {r.Steps} ({r.StopReason}), before the pruning window's end (step {pruning.EndStep}): nothing was written to '{outFolder}'."
                    + (training.CheckpointFolder is { } c ? $" Run the same command again to continue from the checkpoint in '{c}'." : " Give a longer --time-limit, or --checkpoint DIR to train in several sessions."));

            var pruned = hook.ApplyPruning();

            // 5. Output, atomically.
            ModelLoading.Save(run, lm, outFolder, storedType, overwriting);

            double? before = r.Validation.Count == 0 ? null : r.Validation[0].Loss;
            var summary = new IdeaResult(
                Model: modelFolder,
                Output: outFolder,
                KdTeacher: teacherFolder,
                Text: lines.TextFile,
                Validation: lines.ValidationDescription,
                IntermediateSizeBefore: widthBefore,
                IntermediateSizeAfter: pruned.IntermediateSize,
                WindowStartStep: pruning.StartStep,
                WindowEndStep: pruning.EndStep,
                Interval: pruning.UpdateInterval,
                Ema: pruning.EmaBeta,
                Shape: run.Require(shape),
                Alpha: distillation?.Alpha,
                Temperature: distillation?.Temperature,
                ParametersBefore: parametersBefore,
                ParametersAfter: lm.ParameterCount,
                TrainSequences: train.Count,
                SequenceLength: sequenceLength,
                WarmupSteps: training.WarmupSteps,
                Steps: r.Steps,
                StopReason: r.StopReason.ToString(),
                Resumed: resumed,
                TokensSeen: r.TokensSeen,
                FirstTrainLoss: r.History.Count == 0 ? null : Math.Round(r.History[0].TrainLoss, 6),
                FinalTrainLoss: r.History.Count == 0 ? null : Math.Round(r.FinalTrainLoss, 6),
                ValidationLossBefore: DistillCommand.Round(before),
                ValidationLossAfter: DistillCommand.Round(r.FinalValidationLoss),
                PerplexityBefore: DistillCommand.Round(before is { } b ? Math.Exp(b) : null),
                PerplexityAfter: DistillCommand.Round(r.FinalValidationLoss is { } f ? Math.Exp(f) : null),
                TeacherValidationLoss: DistillCommand.Round(teacherLoss),
                TeacherPerplexity: DistillCommand.Round(teacherLoss is { } t ? Math.Exp(t) : null),
                SaveDtype: CommonOptions.DtypeName(storedType),
                TrainingSeconds: Math.Round(trainingSeconds, 3),
                Seconds: Math.Round(total.Elapsed.TotalSeconds, 3));
            if (run.Require(o.Json)) ResultWriter.WriteJson(run.Out, summary);
            else WriteTable(run.Out, summary);
            return ExitCodes.Success;
        });
        return command;
    }

    private static void WriteTable(TextWriter output, IdeaResult r)
    {
        List<(string, string)> rows =
        [
            ("Model", r.Model),
            ("Pruned model", r.Output),
            ("Training text", $"{r.Text} ({ResultWriter.Count(r.TrainSequences)} sequences of {r.SequenceLength} tokens)"),
            ("Validation", r.Validation ?? "none"),
            ("Intermediate size", $"{r.IntermediateSizeBefore} → {r.IntermediateSizeAfter}"),
            ("Parameters", $"{ResultWriter.Count(r.ParametersBefore)} → {ResultWriter.Count(r.ParametersAfter)} ({ResultWriter.Number(100.0 * r.ParametersAfter / r.ParametersBefore, 1)} %)"),
            ("Pruning window", $"steps [{r.WindowStartStep}, {r.WindowEndStep}), update every {r.Interval}, EMA β {r.Ema.ToString(CultureInfo.InvariantCulture)}, {r.Shape}"),
            ("Loss", r.KdTeacher is null ? "language model" : $"{r.Alpha!.Value.ToString(CultureInfo.InvariantCulture)}·LM + {(1 - r.Alpha.Value).ToString(CultureInfo.InvariantCulture)}·T²·KL from {r.KdTeacher}, T = {r.Temperature!.Value.ToString(CultureInfo.InvariantCulture)}"),
            ("Steps", $"{r.Steps} ({r.StopReason}{(r.Resumed ? ", resumed" : "")}), {ResultWriter.Count(r.TokensSeen)} tokens, warm-up {r.WarmupSteps}"),
            ("Train loss", r.FirstTrainLoss is null ? "n/a" : $"{ResultWriter.Number(r.FirstTrainLoss.Value, 4)} → {ResultWriter.Number(r.FinalTrainLoss!.Value, 4)}"),
            ("Validation loss before", DistillCommand.Loss(r.ValidationLossBefore, r.PerplexityBefore)),
            ("Validation loss after", DistillCommand.Loss(r.ValidationLossAfter, r.PerplexityAfter)),
        ];
        if (r.KdTeacher is not null) rows.Add(("Teacher validation loss", DistillCommand.Loss(r.TeacherValidationLoss, r.TeacherPerplexity)));
        rows.Add(("Saved as", r.SaveDtype));
        rows.Add(("Time", $"{ResultWriter.Number(r.Seconds, 1)} s (training {ResultWriter.Number(r.TrainingSeconds, 1)} s)"));
        ResultWriter.WriteTable(output, rows);
    }
}

/// <summary>The result of <c>idea</c>. Validation losses are language-model losses (nats per token): before is the unpruned model.</summary>
internal sealed record IdeaResult(string Model, string Output, string? KdTeacher, string Text, string? Validation, int IntermediateSizeBefore, int IntermediateSizeAfter,
    int WindowStartStep, int WindowEndStep, int Interval, double Ema, string Shape, double? Alpha, double? Temperature, long ParametersBefore, long ParametersAfter,
    int TrainSequences, int SequenceLength, int WarmupSteps, long Steps, string StopReason, bool Resumed, long TokensSeen, double? FirstTrainLoss, double? FinalTrainLoss,
    double? ValidationLossBefore, double? ValidationLossAfter, double? PerplexityBefore, double? PerplexityAfter, double? TeacherValidationLoss, double? TeacherPerplexity,
    string SaveDtype, double TrainingSeconds, double Seconds);

using System.CommandLine;
using System.ComponentModel.DataAnnotations;
using System.Globalization;
using System.Text.RegularExpressions;
using Pip.Torch;
using Pip.Torch.Training;
using Pip.Torch.Training.Distillation;
using Pip.Training;
using static TorchSharp.torch;

namespace Pip.Cli.Infrastructure;

/// <summary>
/// The options of the commands that train every weight of a model on a text file (<c>distill</c>, <c>idea</c>): the
/// text and its validation split, the run (steps, learning rate, warm-up, batches), resumable checkpoints, a time
/// limit, the compute and storage types and the device; and their translation into <see cref="TrainingOptions"/>.
/// </summary>
/// <remarks>
/// The optimizer settings are those of transformers' <c>Trainer</c> for fine-tuning (AdamW β₂ 0.999, no weight
/// decay, gradient clipping at 1), with a cosine decay to a tenth of the peak learning rate. Each call of
/// <see cref="Create"/> makes new option instances (an option belongs to one command).
/// </remarks>
internal sealed class FineTuningOptions
{
    /// <summary>The default peak learning rate of full fine-tuning: 5e-5 (transformers' <c>Trainer</c> default).</summary>
    public const double DefaultLearningRate = 5e-5;

    /// <summary>The default number of optimizer steps: 200.</summary>
    public const int DefaultSteps = 200;

    /// <summary>The default number of sequences per optimizer step: 8.</summary>
    public const int DefaultBatchSize = 8;

    /// <summary>The default training sequence length: 256 tokens (as <c>recover</c>).</summary>
    public const int DefaultSequenceLength = 256;

    /// <summary>The default seed of the data order: 42.</summary>
    public const int DefaultSeed = 42;

    /// <summary>The validation loss is evaluated on the first this many validation sequences (as <c>recover</c>).</summary>
    public const int MaxValidationSequences = 64;

    /// <summary>The names of the training options' members on the command line, for validation messages.</summary>
    public static readonly IReadOnlyDictionary<string, string> TrainingNames = new Dictionary<string, string>
    {
        [nameof(TrainingOptions.LearningRate)] = "--lr",
        [nameof(TrainingOptions.MaxSteps)] = "--steps",
        [nameof(TrainingOptions.WarmupSteps)] = "--warmup",
        [nameof(TrainingOptions.BatchSize)] = "--batch-size",
        [nameof(TrainingOptions.MaxDuration)] = "--time-limit",
        [nameof(TrainingOptions.CheckpointEvery)] = "--checkpoint-every",
    };

    /// <summary>The names of the distillation options' members on the command line.</summary>
    public static readonly IReadOnlyDictionary<string, string> DistillationNames = new Dictionary<string, string>
    {
        [nameof(DistillationOptions.Alpha)] = "--alpha",
        [nameof(DistillationOptions.Temperature)] = "--temperature",
    };

    private FineTuningOptions(int? defaultWarmup)
    {
        DefaultWarmup = defaultWarmup;
        Warmup = new Option<int?>("--warmup")
        {
            Description = defaultWarmup is { } w ? $"Warm-up steps (linear, at the start of the one schedule). Default: {w}." : "Warm-up steps (linear). Default: a tenth of --steps, at most 100.",
            HelpName = "N",
        };
    }

    /// <summary>The default warm-up, or null for a tenth of the steps (at most 100).</summary>
    public int? DefaultWarmup { get; }

    /// <summary><c>--text FILE</c>.</summary>
    public Option<string> Text { get; } = new("--text", "-t") { Description = "The UTF-8 training text: one document per non-empty line.", Required = true, HelpName = "FILE" };

    /// <summary><c>--valid FILE</c>.</summary>
    public Option<string?> Valid { get; } = new("--valid")
    {
        Description = "A held-out UTF-8 text (same format) for the validation loss before, during and after training. Default: none, or --holdout.",
        HelpName = "FILE",
    };

    /// <summary><c>--holdout N</c>.</summary>
    public Option<int> Holdout { get; } = new Option<int>("--holdout")
    {
        Description = "Without --valid: hold out every N-th line of --text for validation (0: no validation).",
        DefaultValueFactory = _ => 0,
        HelpName = "N",
    }.AtLeast(0);

    /// <summary><c>--steps N</c>.</summary>
    public Option<int> Steps { get; } = new("--steps") { Description = "Optimizer steps (the length of the one learning-rate schedule).", DefaultValueFactory = _ => DefaultSteps, HelpName = "N" };

    /// <summary><c>--lr LR</c>.</summary>
    public Option<double> LearningRate { get; } = new("--lr") { Description = "The peak learning rate (linear warm-up, then cosine decay to a tenth).", DefaultValueFactory = _ => DefaultLearningRate, HelpName = "LR" };

    /// <summary><c>--warmup N</c>.</summary>
    public Option<int?> Warmup { get; }

    /// <summary><c>--batch-size N</c>.</summary>
    public Option<int> BatchSize { get; } = new("--batch-size") { Description = "Sequences per optimizer step.", DefaultValueFactory = _ => DefaultBatchSize, HelpName = "N" };

    /// <summary><c>--seq-len N</c>.</summary>
    public Option<int> SequenceLength { get; } = new Option<int>("--seq-len") { Description = "Tokens per training sequence.", DefaultValueFactory = _ => DefaultSequenceLength, HelpName = "N" }.AtLeast(2);

    /// <summary><c>--max-tokens N</c>.</summary>
    public Option<int?> MaxTokens { get; } = new Option<int?>("--max-tokens") { Description = "Use only the first N training tokens.", HelpName = "N" }.AtLeast(2);

    /// <summary><c>--seed N</c>.</summary>
    public Option<int> Seed { get; } = new("--seed") { Description = "The seed of the data order.", DefaultValueFactory = _ => DefaultSeed };

    /// <summary><c>--checkpoint DIR</c>.</summary>
    public Option<string?> Checkpoint { get; } = new("--checkpoint")
    {
        Description = "A folder for a resumable checkpoint of the run (weights, optimizer state; written every --checkpoint-every steps, at the end and on Ctrl-C); a run with the same settings continues from it.",
        HelpName = "DIR",
    };

    /// <summary><c>--checkpoint-every N</c>.</summary>
    public Option<int> CheckpointEvery { get; } = new Option<int>("--checkpoint-every") { Description = "With --checkpoint: steps between checkpoints.", DefaultValueFactory = _ => 50, HelpName = "N" }.AtLeast(1);

    /// <summary><c>--time-limit MINUTES</c>.</summary>
    public Option<double?> TimeLimit { get; } = new("--time-limit") { Description = "Stop training (gracefully) after this many minutes of training.", HelpName = "MINUTES" };

    /// <summary><c>--dtype</c>: the type to train in.</summary>
    public Option<ScalarType?> Dtype { get; } = CommonOptions.Dtype("The type to train (and keep the master weights) in. Default: float32; lower precision only on a device that computes it fast.");

    /// <summary><c>--save-dtype</c>.</summary>
    public Option<ScalarType?> SaveDtype { get; } = CommonOptions.Dtype("The type to store the trained weights in (default: the model's torch_dtype).", "--save-dtype");

    /// <summary><c>--device</c>.</summary>
    public Option<Device> Device { get; } = CommonOptions.Device();

    /// <summary><c>--allow-non-finite</c>.</summary>
    public Option<bool> AllowNonFinite { get; } = CommonOptions.AllowNonFinite();

    /// <summary><c>--overwrite</c>.</summary>
    public Option<bool> Overwrite { get; } = CommonOptions.Overwrite();

    /// <summary><c>--json</c>.</summary>
    public Option<bool> Json { get; } = CommonOptions.Json();

    /// <summary>The data options, in help order.</summary>
    public IEnumerable<Option> DataOptions => [Text, Valid, Holdout];

    /// <summary>The run options, in help order.</summary>
    public IEnumerable<Option> RunOptions => [Steps, LearningRate, Warmup, BatchSize, SequenceLength, MaxTokens, Seed, Checkpoint, CheckpointEvery, TimeLimit, Dtype, SaveDtype, Device, AllowNonFinite, Overwrite, Json];

    /// <summary>New options; <paramref name="defaultWarmup"/> null for a tenth of the steps (at most 100).</summary>
    public static FineTuningOptions Create(int? defaultWarmup = null) => new(defaultWarmup);

    /// <summary>
    /// <c>--alpha A</c>: the weight of the language-model loss in distillation. Without <paramref name="withDefault"/>
    /// the option has no value unless given (for an option that needs another), and its default is only described.
    /// </summary>
    public static Option<double?> Alpha(bool withDefault, string suffix = "") => WithDefault(new Option<double?>("--alpha")
    {
        Description = $"Distillation: the weight α of the language-model loss in α·LM + (1 − α)·T²·KL(teacher ‖ student), in [0, 1].{(withDefault ? "" : $" Default: {DistillationConstants.DefaultAlpha.ToString(CultureInfo.InvariantCulture)}.")}{suffix}",
        HelpName = "A",
    }, withDefault ? DistillationConstants.DefaultAlpha : null);

    /// <summary><c>--temperature T</c>: the distillation temperature (see <see cref="Alpha"/> for <paramref name="withDefault"/>).</summary>
    public static Option<double?> Temperature(bool withDefault, string suffix = "") => WithDefault(new Option<double?>("--temperature")
    {
        Description = $"Distillation: the temperature T both distributions are softened with.{(withDefault ? "" : $" Default: {DistillationConstants.DefaultTemperature.ToString(CultureInfo.InvariantCulture)}.")}{suffix}",
        HelpName = "T",
    }, withDefault ? DistillationConstants.DefaultTemperature : null);

    private static Option<double?> WithDefault(Option<double?> option, double? value)
    {
        if (value is { } v) option.DefaultValueFactory = _ => v;
        return option;
    }

    /// <summary>Reads the text and the validation lines (see <see cref="TrainingText.ReadLines(string, string?, int)"/>).</summary>
    public TrainingLines ReadLines(CommandInvocation run) => TrainingText.ReadLines(run.Require(Text), run.Get(Valid), run.Require(Holdout));

    /// <summary>
    /// The training settings of the command line; their problems (with the options' names) are added to
    /// <paramref name="problems"/> instead of thrown, so that a command reports every problem at once.
    /// </summary>
    public TrainingOptions CreateTraining(CommandInvocation run, bool hasValidation, List<string> problems)
    {
        var steps = run.Require(Steps);
        var training = new TrainingOptions
        {
            LearningRate = run.Require(LearningRate),
            MinLearningRateRatio = 0.1,
            MaxSteps = steps,
            WarmupSteps = run.Get(Warmup) ?? DefaultWarmup ?? Math.Min(100, steps / 10),
            BatchSize = run.Require(BatchSize),
            WeightDecay = 0,
            Beta1 = 0.9,
            Beta2 = 0.999,
            MaxGradientNorm = 1.0,
            Seed = run.Require(Seed),
            LogEvery = Math.Max(1, steps / 20),
            EvaluateEvery = hasValidation ? Math.Max(1, steps / 4) : 0,
            MaxValidationSequences = MaxValidationSequences,
        };
        if (run.Get(Checkpoint) is { } c)
        {
            training.CheckpointFolder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(c));
            training.CheckpointEvery = run.Require(CheckpointEvery);
        }
        if (run.Get(TimeLimit) is { } minutes)
        {
            if (minutes > 0 && !double.IsInfinity(minutes)) training.MaxDuration = TimeSpan.FromMinutes(minutes);
            else problems.Add($"--time-limit must be a positive number of minutes, got {minutes.ToString(CultureInfo.InvariantCulture)}.");
        }
        problems.AddRange(OptionProblems.Of(training, TrainingNames));
        return training;
    }

    /// <summary>The distillation settings of <c>--alpha</c> and <c>--temperature</c>; their problems are added to <paramref name="problems"/>.</summary>
    public static DistillationOptions CreateDistillation(CommandInvocation run, Option<double?> alpha, Option<double?> temperature, List<string> problems)
    {
        var options = new DistillationOptions
        {
            Alpha = run.Get(alpha) ?? DistillationConstants.DefaultAlpha,
            Temperature = run.Get(temperature) ?? DistillationConstants.DefaultTemperature,
            LanguageModelLossWhenEvaluating = true,
        };
        problems.AddRange(OptionProblems.Of(options, DistillationNames));
        return options;
    }

    /// <summary>Loads the model to train: in --dtype (default float32) on --device.</summary>
    public TorchCausalLM LoadModel(CommandInvocation run, string folder) => ModelLoading.Load(run, folder, ComputeType(run), run.Require(Device));

    /// <summary>Loads a teacher in the same type and on the same device as the model to train (see <see cref="LoadModel"/>).</summary>
    public TorchCausalLM LoadTeacher(CommandInvocation run, string folder) => TeacherModels.Load(run, folder, ComputeType(run), run.Require(Device));

    /// <summary>The type to store the trained weights in: --save-dtype, else the model's torch_dtype.</summary>
    public ScalarType StoredType(CommandInvocation run, TorchCausalLM lm) => run.Get(SaveDtype) ?? TorchCausalLM.DtypeOf(lm.Config);

    /// <summary>The text's training and validation sequences of --seq-len tokens (see <see cref="TrainingText.Pack(TrainingLines, Pip.Tokenization.HfTokenizer, TorchCausalLM, int, int, int?, Microsoft.Extensions.Logging.ILogger)"/>).</summary>
    public (PackedSequences Train, PackedSequences? Validation) Pack(CommandInvocation run, TrainingLines lines, Pip.Tokenization.HfTokenizer tokenizer, TorchCausalLM lm, TrainingOptions training) =>
        TrainingText.Pack(lines, tokenizer, lm, run.Require(SequenceLength), training.BatchSize, run.Get(MaxTokens), run.Logger);

    private ScalarType ComputeType(CommandInvocation run) => run.Get(Dtype) ?? ScalarType.Float32;

    /// <summary>
    /// Continues from the trainer's checkpoint when it has one, then trains with a progress bar (the trainer logs its
    /// steps itself); the result and whether the run resumed.
    /// </summary>
    public static (TrainingResult Result, bool Resumed) Train(CausalLMTrainer trainer, PackedSequences train, PackedSequences? validation, CommandInvocation run)
    {
        var resumed = trainer.TryResume();
        var result = trainer.Train(train, validation, run.WithBars(new NoProgress<TrainingProgress>(), Bar), run.CancellationToken);
        return (result, resumed);
    }

    /// <summary>The progress bar of a training run.</summary>
    public static (string Key, string Description, double Completed, double Total)? Bar(TrainingProgress p) =>
        ("training", $"Training: loss {p.TrainLoss.ToString("F3", CultureInfo.InvariantCulture)}{(p.ValidationLoss is { } v ? $", validation {v.ToString("F3", CultureInfo.InvariantCulture)}" : "")}", p.Step, Math.Max(1, p.TotalSteps));

    /// <summary>Progress that goes nowhere (the trainer logs its steps itself), for <see cref="CommandInvocation.WithBars{T}(IProgress{T}, Func{T, ValueTuple{string, string, double, double}?})"/>.</summary>
    public sealed class NoProgress<T> : IProgress<T>
    {
        /// <inheritdoc/>
        public void Report(T value)
        {
        }
    }
}

/// <summary>Validation problems of the library's option classes, in the command line's terms.</summary>
internal static partial class OptionProblems
{
    /// <summary>
    /// Every problem of <paramref name="options"/> (attributes and cross-field checks), with its members' names
    /// replaced by the command-line options of <paramref name="names"/>.
    /// </summary>
    public static IEnumerable<string> Of(IValidatableObject options, IReadOnlyDictionary<string, string> names)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(options, new ValidationContext(options), results, validateAllProperties: true);
        results.AddRange(options.Validate(new ValidationContext(options)));
        return results.Select(r => Rename(r.ErrorMessage ?? "", names)).Distinct().ToList();
    }

    /// <summary>Throws one <see cref="CliInputException"/> listing every problem, when there is any.</summary>
    public static void ThrowIfAny(IReadOnlyCollection<string> problems)
    {
        if (problems.Count == 0) return;
        if (problems.Count == 1) throw new CliInputException(problems.First());
        throw new CliInputException($"{problems.Count} problems with the options:{Environment.NewLine}{string.Join(Environment.NewLine, problems.Select(p => "  - " + p))}");
    }

    private static string Rename(string message, IReadOnlyDictionary<string, string> names)
    {
        foreach (var (member, option) in names)
        {
            message = message.Replace($"The field {member}", option, StringComparison.Ordinal);
            message = Regex.Replace(message, $@"\b{Regex.Escape(member)}\b", option);
        }
        return message;
    }
}

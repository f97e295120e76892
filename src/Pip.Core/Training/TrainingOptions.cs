using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip.Training;

/// <summary>Settings of a causal-LM training run (optimizer, schedule, batches, evaluation, checkpoints, stopping).</summary>
/// <remarks>Call <see cref="Validate()"/> (the trainer does) to check every setting at once.</remarks>
public sealed class TrainingOptions : IValidatableObject
{
    /// <summary>The peak learning rate.</summary>
    [Range(1e-12, 10.0)]
    public double LearningRate { get; set; } = 1e-3;

    /// <summary>The final learning rate as a fraction of the peak (cosine decay target).</summary>
    [Range(0.0, 1.0)]
    public double MinLearningRateRatio { get; set; } = 0.1;

    /// <summary>Linear warm-up steps (optimizer steps).</summary>
    [Range(0, int.MaxValue)]
    public int WarmupSteps { get; set; } = 100;

    /// <summary>The total number of optimizer steps; the schedule ends here.</summary>
    [Range(1, int.MaxValue)]
    public int MaxSteps { get; set; } = 1000;

    /// <summary>Sequences per micro-batch.</summary>
    [Range(1, 65536)]
    public int BatchSize { get; set; } = 8;

    /// <summary>Micro-batches accumulated into one optimizer step.</summary>
    [Range(1, 65536)]
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>AdamW decoupled weight decay, applied to matrices only (not to norms, biases or embeddings).</summary>
    [Range(0.0, 1.0)]
    public double WeightDecay { get; set; } = 0.1;

    /// <summary>AdamW β₁.</summary>
    [Range(0.0, 0.999999)]
    public double Beta1 { get; set; } = 0.9;

    /// <summary>AdamW β₂.</summary>
    [Range(0.0, 0.99999999)]
    public double Beta2 { get; set; } = 0.95;

    /// <summary>AdamW ε.</summary>
    [Range(1e-30, 1.0)]
    public double Epsilon { get; set; } = 1e-8;

    /// <summary>The global gradient-norm bound (L2 over all trained parameters); 0 disables clipping.</summary>
    [Range(0.0, double.MaxValue)]
    public double MaxGradientNorm { get; set; } = 1.0;

    /// <summary>Evaluate the validation loss every this many optimizer steps (and at the end); 0 disables.</summary>
    [Range(0, int.MaxValue)]
    public int EvaluateEvery { get; set; } = 100;

    /// <summary>The most validation sequences evaluated each time (the first ones, in a fixed order); 0 means all.</summary>
    [Range(0, int.MaxValue)]
    public int MaxValidationSequences { get; set; }

    /// <summary>Write a checkpoint at least every this many optimizer steps; 0 disables the step trigger.</summary>
    [Range(0, int.MaxValue)]
    public int CheckpointEvery { get; set; }

    /// <summary>Write a checkpoint when this much time has passed since the last one; null disables the time trigger.</summary>
    public TimeSpan? CheckpointInterval { get; set; }

    /// <summary>The folder for the resumable checkpoint; null writes none.</summary>
    public string? CheckpointFolder { get; set; }

    /// <summary>
    /// Early stop: stop when the best validation loss of the last <see cref="EarlyStoppingPatience"/> evaluations is not
    /// lower than the best before them by at least <see cref="EarlyStoppingMinDelta"/>; 0 disables.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int EarlyStoppingPatience { get; set; }

    /// <summary>The validation-loss improvement (nats) that counts as progress for early stopping.</summary>
    [Range(0.0, double.MaxValue)]
    public double EarlyStoppingMinDelta { get; set; } = 0.01;

    /// <summary>
    /// Stop (gracefully: final evaluation and checkpoint) once the run's training time, resumed sessions included,
    /// reaches this; null for no limit. The schedule is not shortened: the run simply ends early.
    /// </summary>
    public TimeSpan? MaxDuration { get; set; }

    /// <summary>The seed of data shuffling.</summary>
    public int Seed { get; set; } = 1234;

    /// <summary>Log a line every this many optimizer steps; 0 disables step logging.</summary>
    [Range(0, int.MaxValue)]
    public int LogEvery { get; set; } = 10;

    /// <summary>Checks every setting; throws one exception that lists all problems.</summary>
    /// <exception cref="ValidationException">A setting is invalid; the message lists each one.</exception>
    public void Validate() => OptionsValidation.ThrowIfInvalid(this, "training options");

    /// <summary>Cross-field checks.</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (WarmupSteps >= MaxSteps)
            yield return new ValidationResult($"WarmupSteps ({WarmupSteps}) must be smaller than MaxSteps ({MaxSteps}).", [nameof(WarmupSteps)]);
        if (CheckpointInterval is { } interval && interval <= TimeSpan.Zero)
            yield return new ValidationResult($"CheckpointInterval ({interval}) must be positive.", [nameof(CheckpointInterval)]);
        if (MaxDuration is { } duration && duration <= TimeSpan.Zero)
            yield return new ValidationResult($"MaxDuration ({duration}) must be positive.", [nameof(MaxDuration)]);
        if (CheckpointFolder is null && (CheckpointEvery > 0 || CheckpointInterval is not null))
            yield return new ValidationResult("CheckpointEvery/CheckpointInterval need a CheckpointFolder.", [nameof(CheckpointFolder)]);
        if (EarlyStoppingPatience > 0 && EvaluateEvery == 0)
            yield return new ValidationResult("EarlyStoppingPatience needs EvaluateEvery > 0.", [nameof(EarlyStoppingPatience)]);
    }

    /// <summary>The schedule these options describe.</summary>
    /// <returns>Warm-up then cosine decay over <see cref="MaxSteps"/>.</returns>
    public LearningRateSchedule CreateSchedule() => new(LearningRate, WarmupSteps, MaxSteps, MinLearningRateRatio);
}

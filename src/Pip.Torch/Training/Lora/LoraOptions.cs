using System.ComponentModel.DataAnnotations;
using Pip.Internal;
using Pip.Training;

namespace Pip.Torch.Training.Lora;

/// <summary>Defaults of LoRA recovery (those of LLM-Pruner's post-training where they apply).</summary>
public static class LoraConstants
{
    /// <summary>The default rank r: 8.</summary>
    public const int DefaultRank = 8;

    /// <summary>The default α: 16 (so the scale α / r is 2).</summary>
    public const double DefaultAlpha = 16;

    /// <summary>The default dropout on the adapters' input: 0.05.</summary>
    public const double DefaultDropout = 0.05;

    /// <summary>The default peak learning rate: 1e-4.</summary>
    public const double DefaultLearningRate = 1e-4;

    /// <summary>The default number of optimizer steps: 200.</summary>
    public const int DefaultMaxSteps = 200;

    /// <summary>The default warm-up: 20 steps.</summary>
    public const int DefaultWarmupSteps = 20;

    /// <summary>The default number of sequences per micro-batch: 8.</summary>
    public const int DefaultBatchSize = 8;

    /// <summary>The default training sequence length in tokens: 256 (LLM-Pruner's <c>cutoff_len</c>).</summary>
    public const int DefaultSequenceLength = 256;

    /// <summary>The default seed of the adapters' initialisation: 42.</summary>
    public const int DefaultSeed = 42;

    /// <summary>
    /// The default target modules: every linear layer of the decoder layers (<c>q_proj</c>, <c>k_proj</c>,
    /// <c>v_proj</c>, <c>o_proj</c>, <c>gate_proj</c>, <c>up_proj</c>, <c>down_proj</c>), as LLM-Pruner's recovery.
    /// </summary>
    public static IReadOnlyList<string> DefaultTargetModules { get; } = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The module names LoRA can target: the decoder projections and <c>lm_head</c> (when untied).</summary>
    public static IReadOnlyList<string> KnownTargetModules { get; } = [.. DefaultTargetModules, "lm_head"];

    /// <summary>
    /// Training settings suited to adapter training: <see cref="DefaultLearningRate"/>, <see cref="DefaultMaxSteps"/>,
    /// <see cref="DefaultWarmupSteps"/>, <see cref="DefaultBatchSize"/>, no weight decay, AdamW β₂ 0.999 (as
    /// transformers' Trainer), validation every 50 steps, the rest <see cref="TrainingOptions"/>' defaults.
    /// </summary>
    /// <returns>A new options object.</returns>
    public static TrainingOptions DefaultTraining() => new()
    {
        LearningRate = DefaultLearningRate,
        MaxSteps = DefaultMaxSteps,
        WarmupSteps = DefaultWarmupSteps,
        BatchSize = DefaultBatchSize,
        WeightDecay = 0,
        Beta2 = 0.999,
        EvaluateEvery = 50,
    };
}

/// <summary>
/// Settings of LoRA recovery: the adapters (rank, α, dropout, target modules, seed), the training run, and what to do
/// with the adapters afterwards.
/// </summary>
/// <remarks>Mutable; <see cref="LoraRecovery.RunAsync"/> and <see cref="LoraAdapters.Attach"/> validate it and read it once, at the start.</remarks>
public sealed class LoraOptions : IValidatableObject
{
    /// <summary>The rank r of each adapter (B is [out, r], A is [r, in]). Default <see cref="LoraConstants.DefaultRank"/>.</summary>
    [Range(1, 65536)]
    public int Rank { get; set; } = LoraConstants.DefaultRank;

    /// <summary>α: the update is scaled by α / <see cref="Rank"/>. Default <see cref="LoraConstants.DefaultAlpha"/>.</summary>
    [Range(1e-12, 1e12)]
    public double Alpha { get; set; } = LoraConstants.DefaultAlpha;

    /// <summary>Dropout probability on the adapters' input while training, in [0, 1). Default <see cref="LoraConstants.DefaultDropout"/>.</summary>
    /// <remarks>Dropout draws from TorchSharp's global generator: a resumed run is bit-identical to an uninterrupted one only with 0.</remarks>
    [Range(0.0, 0.999999)]
    public double Dropout { get; set; } = LoraConstants.DefaultDropout;

    /// <summary>
    /// The linear modules that get an adapter, by their last Hugging Face name segment (e.g. <c>q_proj</c> adapts
    /// every layer's <c>self_attn.q_proj</c>). Default <see cref="LoraConstants.DefaultTargetModules"/>.
    /// </summary>
    public IList<string> TargetModules { get; set; } = [.. LoraConstants.DefaultTargetModules];

    /// <summary>Only these decoder layers (current indices) get adapters, or null for all. Default null.</summary>
    public IList<int>? Layers { get; set; }

    /// <summary>The seed of the A matrices' Kaiming-uniform initialisation. Default <see cref="LoraConstants.DefaultSeed"/>.</summary>
    public int Seed { get; set; } = LoraConstants.DefaultSeed;

    /// <summary>The training run (only the adapters are trained). Default <see cref="LoraConstants.DefaultTraining"/>.</summary>
    public TrainingOptions Training { get; set; } = LoraConstants.DefaultTraining();

    /// <summary>
    /// Whether <see cref="LoraRecovery.RunAsync"/> merges the adapters into the base weights at the end (W ← W + α/r·B·A),
    /// leaving a plain model to save; otherwise they stay attached and the result holds them. Default true.
    /// </summary>
    public bool MergeAfterTraining { get; set; } = true;

    /// <summary>
    /// Whether <see cref="LoraRecovery.RunAsync"/> continues from the checkpoint in
    /// <see cref="TrainingOptions.CheckpointFolder"/> when there is one. Default true.
    /// </summary>
    public bool ResumeFromCheckpoint { get; set; } = true;

    /// <summary>The scale α / r applied to B·A.</summary>
    public double Scale => Alpha / Rank;

    /// <summary>Checks every setting (the training settings included); throws one exception that lists all problems.</summary>
    /// <exception cref="ValidationException">A setting is invalid; the message lists each one.</exception>
    public void Validate() => OptionsValidation.ThrowIfInvalid(this, "LoRA options");

    /// <summary>Cross-field checks, and the training settings' own checks (prefixed <c>Training.</c>).</summary>
    /// <param name="validationContext">The validation context.</param>
    /// <returns>The problems found.</returns>
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (TargetModules is null || TargetModules.Count == 0)
        {
            yield return new ValidationResult("TargetModules: give at least one module name.", [nameof(TargetModules)]);
        }
        else
        {
            foreach (var name in TargetModules.Where(n => string.IsNullOrWhiteSpace(n) || n.Contains('.', StringComparison.Ordinal)).Distinct())
                yield return new ValidationResult($"TargetModules: '{name}' is not a module name (one segment, such as q_proj).", [nameof(TargetModules)]);
            var unknown = TargetModules.Where(n => !string.IsNullOrWhiteSpace(n) && !n.Contains('.', StringComparison.Ordinal) && !LoraConstants.KnownTargetModules.Contains(n)).Distinct().ToArray();
            if (unknown.Length > 0)
                yield return new ValidationResult($"TargetModules: unknown module(s) {string.Join(", ", unknown)}; use {string.Join(", ", LoraConstants.KnownTargetModules)}.", [nameof(TargetModules)]);
        }

        if (Layers is not null)
        {
            if (Layers.Count == 0) yield return new ValidationResult("Layers: give at least one layer, or null for all.", [nameof(Layers)]);
            var negative = Layers.Where(l => l < 0).Distinct().ToArray();
            if (negative.Length > 0) yield return new ValidationResult($"Layers: {string.Join(", ", negative)} are negative.", [nameof(Layers)]);
        }

        if (Training is null)
        {
            yield return new ValidationResult("Training: must not be null.", [nameof(Training)]);
            yield break;
        }

        var training = new List<ValidationResult>();
        Validator.TryValidateObject(Training, new ValidationContext(Training), training, validateAllProperties: true);
        training.AddRange(Training.Validate(new ValidationContext(Training)));
        foreach (var message in training.Select(r => r.ErrorMessage ?? "").Distinct())
            yield return new ValidationResult("Training: " + message, [nameof(Training)]);
    }
}

using System.ComponentModel.DataAnnotations;
using Pip.Torch.Evaluation;
using Pip.Torch.Training.Lora;

namespace Pip.Torch.Search;

/// <summary>Defaults of <see cref="TorchAdaPrunerObjective"/>.</summary>
public static class TorchAdaPrunerConstants
{
    /// <summary>Default number of validation tokens measured per trial: 16,384.</summary>
    public const int DefaultValidationTokens = 16_384;

    /// <summary>Default LoRA learning rate of the per-trial recovery: 1e-4 (LLM-Pruner's).</summary>
    public const double DefaultRecoveryLearningRate = LoraConstants.DefaultLearningRate;

    /// <summary>Default sequence length of the recovery's training sequences: 128.</summary>
    public const int DefaultRecoverySequenceLength = 128;
}

/// <summary>
/// Settings of <see cref="TorchAdaPrunerObjective"/> that are the same for every trial: the target, how the validation
/// perplexity is measured, the width/depth pipeline settings that are not searched, and the optional LoRA recovery.
/// </summary>
/// <remarks>Mutable; the objective keeps a copy made when it is created.</remarks>
public sealed class TorchAdaPrunerOptions : IValidatableObject
{
    /// <summary>Fraction of the parameters to remove, in (0, 1). Default <see cref="PipelineConstants.DefaultParameterRatio"/>.</summary>
    public double Ratio { get; set; } = PipelineConstants.DefaultParameterRatio;

    /// <summary>Window of the validation perplexity (non-overlapping windows, last partial one dropped). Default <see cref="CorpusWindowing.DefaultWindow"/>.</summary>
    [Range(2, 1 << 20)]
    public int ValidationWindow { get; set; } = CorpusWindowing.DefaultWindow;

    /// <summary>Windows per forward pass of the validation. Default 8.</summary>
    [Range(1, 4096)]
    public int ValidationBatchSize { get; set; } = 8;

    /// <summary>Width mode: which units to prune. Default <see cref="WidthUnits.Both"/>.</summary>
    public WidthUnits Units { get; set; } = WidthUnits.Both;

    /// <summary>Width mode: first layer that may be pruned, or null for LLM-Pruner's default range.</summary>
    [Range(0, int.MaxValue)]
    public int? LayerStart { get; set; }

    /// <summary>Width mode: end (exclusive) of the layers that may be pruned, or null for the default range.</summary>
    [Range(1, int.MaxValue)]
    public int? LayerEnd { get; set; }

    /// <summary>Depth mode: score once and remove the lowest layers together, instead of PIP's iterative greedy removal. Default false.</summary>
    public bool OneShot { get; set; }

    /// <summary>Depth mode, <c>pip</c>: perturbation sets per round. Default 1 (no consistency discriminator in a search).</summary>
    [Range(1, PipelineConstants.MaxPerturbationSets)]
    public int PerturbationSets { get; set; } = 1;

    /// <summary>LoRA recovery steps after each pruning, before the measurement; 0 (the default) for none.</summary>
    [Range(0, 10_000_000)]
    public int RecoverySteps { get; set; }

    /// <summary>
    /// The text the recovery trains on, or null for each trial's calibration corpus. It must not hold the validation
    /// text either.
    /// </summary>
    public string? RecoveryPath { get; set; }

    /// <summary>Recovery: sequences per step. Default <see cref="LoraConstants.DefaultBatchSize"/>.</summary>
    [Range(1, 65536)]
    public int RecoveryBatchSize { get; set; } = LoraConstants.DefaultBatchSize;

    /// <summary>Recovery: tokens per training sequence. Default <see cref="TorchAdaPrunerConstants.DefaultRecoverySequenceLength"/>.</summary>
    [Range(2, 1 << 20)]
    public int RecoverySequenceLength { get; set; } = TorchAdaPrunerConstants.DefaultRecoverySequenceLength;

    /// <summary>Recovery: peak learning rate. Default <see cref="TorchAdaPrunerConstants.DefaultRecoveryLearningRate"/>.</summary>
    [Range(1e-12, 10.0)]
    public double RecoveryLearningRate { get; set; } = TorchAdaPrunerConstants.DefaultRecoveryLearningRate;

    /// <summary>Recovery: LoRA rank. Default <see cref="LoraConstants.DefaultRank"/>.</summary>
    [Range(1, 65536)]
    public int LoraRank { get; set; } = LoraConstants.DefaultRank;

    /// <summary>Recovery: seed of the adapters' initialisation and of the batch order. Default <see cref="LoraConstants.DefaultSeed"/>.</summary>
    public int RecoverySeed { get; set; } = LoraConstants.DefaultSeed;

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!(Ratio > 0 && Ratio < 1))
            yield return new ValidationResult($"Ratio: the parameter ratio must be in (0, 1); got {Ratio}.", [nameof(Ratio)]);
        if (Units is not (WidthUnits.Heads or WidthUnits.Channels or WidthUnits.Both))
            yield return new ValidationResult($"Units: '{Units}' is not heads, channels or both.", [nameof(Units)]);
        if (LayerStart is { } start && LayerEnd is { } end && end <= start)
            yield return new ValidationResult($"LayerEnd: the layer range [{start}, {end}) is empty.", [nameof(LayerEnd)]);
    }

    /// <summary>Checks every setting; throws one exception that lists all problems.</summary>
    /// <exception cref="ValidationException">A setting is invalid; the message lists each one.</exception>
    public void Check()
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(this, new ValidationContext(this), results, validateAllProperties: true);
        if (results.Count > 0) results.AddRange(Validate(new ValidationContext(this)));
        var messages = results.Select(r => r.ErrorMessage ?? "").Distinct().ToList();
        if (messages.Count > 0)
            throw new ValidationException($"Invalid AdaPruner options ({messages.Count} problem(s)):{Environment.NewLine}{string.Join(Environment.NewLine, messages.Select(m => "  - " + m))}");
    }

    internal TorchAdaPrunerOptions Clone() => (TorchAdaPrunerOptions)MemberwiseClone();
}

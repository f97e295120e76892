using System.ComponentModel.DataAnnotations;

namespace Pip.Torch.Pruning;

/// <summary>Names and defaults of Pip.Torch's importance metrics.</summary>
public static class TorchMetricConstants
{
    /// <summary>PIP's PertImport: <c>pip</c>.</summary>
    public const string PertImport = MetricConstants.Pip;

    /// <summary>Plain gradient norm (PIP's "iteration only" ablation): <c>gradient</c>.</summary>
    public const string GradientNorm = "gradient";

    /// <summary>Shortened LLaMA's Taylor+: <c>taylor</c>.</summary>
    public const string Taylor = "taylor";

    /// <summary>Mean weight magnitude: <c>magnitude</c>.</summary>
    public const string Magnitude = "magnitude";

    /// <summary>ShortGPT's Block Influence: <c>block-influence</c>.</summary>
    public const string BlockInfluence = "block-influence";

    /// <summary>Default longest token sequence per sample: 128 (PIP's calibration length).</summary>
    public const int DefaultMaxTokens = 128;
}

/// <summary>Options of Pip.Torch's importance metrics.</summary>
/// <remarks>Mutable; a metric keeps a copy made when it is created.</remarks>
public sealed class TorchMetricOptions : IValidatableObject
{
    /// <summary>The vector norm of gradient-norm metrics (<c>L1</c>, <c>L2</c>, <c>Linf</c>). Default <c>L2</c>.</summary>
    [Required]
    public string Norm { get; set; } = PipelineConstants.DefaultNorm;

    /// <summary>How PertImport accumulates over samples. Default <see cref="PertImportAggregation.PerSampleMean"/>.</summary>
    public PertImportAggregation Aggregation { get; set; } = PertImportAggregation.PerSampleMean;

    /// <summary>Longest token sequence per sample (longer ones are cut). Default <see cref="TorchMetricConstants.DefaultMaxTokens"/>.</summary>
    [Range(2, 1 << 20)]
    public int MaxTokens { get; set; } = TorchMetricConstants.DefaultMaxTokens;

    /// <summary>Recompute each layer during the backward pass instead of keeping its graph (less memory, about one more forward pass). Default false.</summary>
    public bool RecomputeActivations { get; set; }

    /// <inheritdoc />
    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Norm is not null && !Norms.TryGet(Norm, out _))
        {
            yield return new ValidationResult($"Norm '{Norm}' is unknown; use one of {string.Join(", ", Norms.Names)}.", [nameof(Norm)]);
        }
    }

    internal TorchMetricOptions Clone() => (TorchMetricOptions)MemberwiseClone();
}

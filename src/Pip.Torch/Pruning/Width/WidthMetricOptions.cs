using System.ComponentModel.DataAnnotations;

namespace Pip.Torch.Pruning.Width;

/// <summary>Names and defaults of Pip.Torch's width importance metrics.</summary>
public static class WidthMetricConstants
{
    /// <summary>First-order Taylor, element-wise: Σ|W·∂L/∂W| over the unit's weights in each projection (LLM-Pruner's <c>param_first</c>): <c>taylor</c>.</summary>
    public const string Taylor = "taylor";

    /// <summary>Second-order Taylor with the diagonal Fisher approximation: Σ ½·W²·F, F the mean over samples of the squared per-sample gradient (LLM-Pruner's <c>param_second</c>): <c>taylor-second</c>.</summary>
    public const string TaylorSecond = "taylor-second";

    /// <summary>First and second order together: Σ|W·g − ½·W²·F| (LLM-Pruner's <c>param_mix</c>): <c>taylor-mix</c>.</summary>
    public const string TaylorMix = "taylor-mix";

    /// <summary>Vector-wise Taylor: per weight row (or column) |Σ W·g|, summed over the unit's rows (LLM-Pruner's <c>vectorize</c>): <c>taylor-vector</c>.</summary>
    public const string TaylorVector = "taylor-vector";

    /// <summary>Wanda-sp: Σ|W|·‖X‖₂ over the unit's weights in each projection, X the projection's input over the calibration tokens: <c>wanda-sp</c>.</summary>
    public const string WandaSp = "wanda-sp";

    /// <summary>FLAP's fluctuation (WIFV): Σ over the unit's o_proj/down_proj input channels j of Var(X_j)·‖W[:, j]‖²: <c>flap</c>.</summary>
    public const string Flap = "flap";

    /// <summary>Weight magnitude: Σ W² over the unit's weights in each projection (LLM-Pruner's magnitude with p = 2): <c>magnitude</c>.</summary>
    public const string Magnitude = "magnitude";

    /// <summary>Default longest token sequence per sample: 128.</summary>
    public const int DefaultMaxTokens = 128;
}

/// <summary>Options of Pip.Torch's width importance metrics.</summary>
/// <remarks>Mutable; a metric keeps a copy made when it is created.</remarks>
public sealed class WidthMetricOptions
{
    /// <summary>How a unit's parts (one per projection it spans) combine: sum, mean, max or product (LLM-Pruner's group reduction). Default <see cref="WidthGroupReduction.Sum"/>. FLAP's metric has one part and ignores it.</summary>
    public WidthGroupReduction GroupReduction { get; set; } = WidthGroupReduction.Sum;

    /// <summary>Longest token sequence per sample (longer ones are cut). Default <see cref="WidthMetricConstants.DefaultMaxTokens"/>.</summary>
    [Range(2, 1 << 20)]
    public int MaxTokens { get; set; } = WidthMetricConstants.DefaultMaxTokens;

    /// <summary>Gradient metrics: recompute each layer during the backward pass instead of keeping its graph. Default false.</summary>
    public bool RecomputeActivations { get; set; }

    internal WidthMetricOptions Clone() => (WidthMetricOptions)MemberwiseClone();
}

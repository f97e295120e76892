using System.ComponentModel.DataAnnotations;

namespace Pip;

/// <summary>Names of the importance metrics Pip knows of (the gradient-based ones live in Pip.Torch).</summary>
public static class MetricConstants
{
    /// <summary>PIP's gradient-difference metric (Pip.Torch).</summary>
    public const string Pip = "pip";

    /// <summary>Random scores (a baseline).</summary>
    public const string Random = "random";

    /// <summary>Loss increase when a layer is skipped (Shortened LLaMA PPL one-shot; SLEB when iterative).</summary>
    public const string PerplexityDrop = "perplexity-drop";
}

/// <summary>Options of the perplexity-drop metric.</summary>
public sealed class PerplexityDropMetricOptions
{
    /// <summary>Longest token sequence scored per sample (longer ones are truncated), or null for no limit.</summary>
    [Range(2, int.MaxValue)]
    public int? MaxTokensPerSample { get; set; }

    internal PerplexityDropMetricOptions Clone() => (PerplexityDropMetricOptions)MemberwiseClone();
}

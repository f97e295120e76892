using System.ComponentModel.DataAnnotations;

namespace Pip;

/// <summary>Names and defaults of the layer guard.</summary>
public static class LayerGuardConstants
{
    /// <summary>The filter's name.</summary>
    public const string Name = "guard";
}

/// <summary>Options of the layer guard, which keeps the first and last layers of the original model.</summary>
public sealed class LayerGuardOptions
{
    /// <summary>Number of first layers of the original model never pruned. Default 0.</summary>
    [Range(0, 100_000)]
    public int First { get; set; }

    /// <summary>Number of last layers of the original model never pruned. Default 0.</summary>
    [Range(0, 100_000)]
    public int Last { get; set; }

    /// <summary>
    /// Number of layers of the original model, or null to infer it as the highest original index present plus one
    /// (exact as long as the last original layer was not removed before the guard first saw the model, which a guard
    /// with <see cref="Last"/> ≥ 1 ensures for its own pipeline).
    /// </summary>
    [Range(1, 100_000)]
    public int? OriginalLayerCount { get; set; }

    /// <summary>Whether the guard protects any layer.</summary>
    internal bool IsActive => First > 0 || Last > 0;

    internal LayerGuardOptions Clone() => (LayerGuardOptions)MemberwiseClone();
}

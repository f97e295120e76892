namespace Pip.Torch.Pruning.Width;

/// <summary>
/// What to remove from the width of a model, per layer: key/value groups of the attention (each with the query heads
/// that share it) and intermediate channels of the MLP. Indices are in the model's current numbering.
/// </summary>
/// <remarks>Layers absent from a dictionary, and empty collections, are left unchanged; duplicate indices are ignored.</remarks>
public sealed record WidthPruningPlan
{
    private static readonly IReadOnlyDictionary<int, IReadOnlyCollection<int>> None = new Dictionary<int, IReadOnlyCollection<int>>();

    /// <summary>Layer → key/value groups (key/value head indices) to remove.</summary>
    public IReadOnlyDictionary<int, IReadOnlyCollection<int>> KeyValueGroups { get; init; } = None;

    /// <summary>Layer → MLP intermediate channels to remove.</summary>
    public IReadOnlyDictionary<int, IReadOnlyCollection<int>> Channels { get; init; } = None;
}

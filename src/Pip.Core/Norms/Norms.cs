namespace Pip;

/// <summary>The vector norms Pip offers, by property or by name.</summary>
/// <remarks>Names are matched case-insensitively: <c>L1</c>; <c>L2</c>; <c>Linf</c>, <c>LInf</c>, <c>inf</c> or <c>max</c> for the maximum norm.</remarks>
public static class Norms
{
    /// <summary>The sum of absolute values.</summary>
    public static INormAggregator L1 { get; } = new L1Norm();

    /// <summary>The Euclidean norm.</summary>
    public static INormAggregator L2 { get; } = new L2Norm();

    /// <summary>The maximum absolute value.</summary>
    public static INormAggregator LInf { get; } = new LInfNorm();

    /// <summary>The canonical names of the norms: <c>L1</c>, <c>L2</c>, <c>Linf</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = [L1Norm.NormName, L2Norm.NormName, LInfNorm.NormName];

    /// <summary>Finds a norm by name.</summary>
    /// <param name="name">A norm name (case-insensitive).</param>
    /// <param name="norm">The norm, when found.</param>
    /// <returns>Whether the name is known.</returns>
    public static bool TryGet(string? name, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out INormAggregator? norm)
    {
        norm = name?.Trim().ToUpperInvariant() switch
        {
            "L1" => L1,
            "L2" => L2,
            "LINF" or "INF" or "L-INF" or "MAX" => LInf,
            _ => null,
        };
        return norm is not null;
    }

    /// <summary>Gets a norm by name.</summary>
    /// <param name="name">A norm name (case-insensitive).</param>
    /// <exception cref="ArgumentException">The name is unknown; the message lists the valid names.</exception>
    public static INormAggregator Get(string name) =>
        TryGet(name, out INormAggregator? norm)
            ? norm
            : throw new ArgumentException($"Unknown norm '{name}'. Valid names: {string.Join(", ", Names)} (case-insensitive; 'inf' also means Linf).", nameof(name));
}

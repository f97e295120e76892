namespace Pip;

/// <summary>Combines the per-projection parts of a unit's score (LLM-Pruner's group reduction).</summary>
public static class GroupReduction
{
    /// <summary>Reduces the parts of one unit.</summary>
    /// <param name="parts">One non-negative score per projection the unit spans (at least one).</param>
    /// <param name="reduction">The reduction.</param>
    /// <returns>Sum, mean, maximum, or the natural logarithm of the product (Σ ln part; negative infinity when a part is 0).</returns>
    /// <exception cref="ArgumentException">No parts.</exception>
    public static double Reduce(ReadOnlySpan<double> parts, WidthGroupReduction reduction)
    {
        if (parts.IsEmpty)
        {
            throw new ArgumentException("A unit needs at least one part to reduce.", nameof(parts));
        }

        double result = reduction == WidthGroupReduction.Max ? double.NegativeInfinity : 0;
        foreach (double p in parts)
        {
            result = reduction switch
            {
                WidthGroupReduction.Sum or WidthGroupReduction.Mean => result + p,
                WidthGroupReduction.Max => Math.Max(result, p),
                WidthGroupReduction.Product => result + Math.Log(p),
                _ => throw new ArgumentOutOfRangeException(nameof(reduction), reduction, "Unknown group reduction."),
            };
        }

        return reduction == WidthGroupReduction.Mean ? result / parts.Length : result;
    }

    /// <summary>Reduces every unit of a layer: <paramref name="parts"/>[p][u] is part p of unit u.</summary>
    /// <param name="parts">Per projection, one value per unit (all of the same length).</param>
    /// <param name="reduction">The reduction.</param>
    /// <returns>One score per unit.</returns>
    /// <exception cref="ArgumentException">No parts, or parts of different lengths.</exception>
    public static double[] ReduceUnits(IReadOnlyList<IReadOnlyList<double>> parts, WidthGroupReduction reduction)
    {
        ArgumentNullException.ThrowIfNull(parts);
        if (parts.Count == 0)
        {
            throw new ArgumentException("A unit needs at least one part to reduce.", nameof(parts));
        }

        int units = parts[0].Count;
        if (parts.Any(p => p.Count != units))
        {
            throw new ArgumentException("Every part must give one value per unit.", nameof(parts));
        }

        var result = new double[units];
        Span<double> buffer = parts.Count <= 64 ? stackalloc double[parts.Count] : new double[parts.Count];
        for (int u = 0; u < units; u++)
        {
            for (int p = 0; p < parts.Count; p++)
            {
                buffer[p] = parts[p][u];
            }

            result[u] = Reduce(buffer, reduction);
        }

        return result;
    }

    /// <summary>Parses a reduction name: <c>sum</c>, <c>mean</c>, <c>max</c>, <c>product</c> (or <c>prod</c>), case-insensitive.</summary>
    /// <param name="name">The name.</param>
    /// <param name="reduction">The reduction, when known.</param>
    public static bool TryParse(string? name, out WidthGroupReduction reduction)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "sum": reduction = WidthGroupReduction.Sum; return true;
            case "mean": reduction = WidthGroupReduction.Mean; return true;
            case "max": reduction = WidthGroupReduction.Max; return true;
            case "product" or "prod": reduction = WidthGroupReduction.Product; return true;
            default: reduction = default; return false;
        }
    }
}

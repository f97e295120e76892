namespace Pip;

/// <summary>A vector norm that can be computed piecewise: the norm of disjoint parts combines into the norm of the whole.</summary>
/// <remarks>
/// <para>Backends compute the per-part norm of order <see cref="Order"/> on their own tensors (one part per parameter
/// tensor, say) and call <see cref="Combine"/>; <see cref="Compute"/> is the plain reference on an array.</para>
/// <para>Thread-safety: implementations are stateless and safe to share.</para>
/// </remarks>
public interface INormAggregator
{
    /// <summary>Short name (<c>L1</c>, <c>L2</c>, <c>Linf</c>).</summary>
    string Name { get; }

    /// <summary>The order p of the norm; <see cref="double.PositiveInfinity"/> for the maximum norm.</summary>
    double Order { get; }

    /// <summary>Combines the norms of disjoint parts of a vector into the norm of the whole vector.</summary>
    /// <param name="partNorms">Norms of order <see cref="Order"/> of each part.</param>
    double Combine(ReadOnlySpan<double> partNorms);

    /// <summary>The norm of a vector.</summary>
    /// <param name="values">The vector.</param>
    double Compute(ReadOnlySpan<float> values);
}

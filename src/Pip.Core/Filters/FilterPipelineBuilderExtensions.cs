namespace Pip;

/// <summary>Builder extensions that add the built-in candidate filters.</summary>
public static class FilterPipelineBuilderExtensions
{
    /// <summary>Adds the consistency discriminator (needs at least 2 perturbation sets; see <see cref="PipelineOptions.PerturbationSets"/>).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder AddConsistencyDiscriminator(this PipelineBuilder builder, ConsistencyDiscriminatorOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new ConsistencyDiscriminatorOptions();
        return builder.AddFilter(ConsistencyDiscriminatorConstants.Name, options, () => new ConsistencyDiscriminator(options.Clone()), isConsistencyDiscriminator: true);
    }

    /// <summary>Adds a guard that keeps the first <paramref name="first"/> and last <paramref name="last"/> layers of the original model.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="first">Number of first layers kept.</param>
    /// <param name="last">Number of last layers kept.</param>
    public static PipelineBuilder AddLayerGuard(this PipelineBuilder builder, int first, int last) =>
        builder.AddLayerGuard(new LayerGuardOptions { First = first, Last = last });

    /// <summary>Adds a guard that keeps the first and last layers of the original model.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder AddLayerGuard(this PipelineBuilder builder, LayerGuardOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);
        return builder.AddFilter(LayerGuardConstants.Name, options, () => new LayerGuard(options.Clone()), isConsistencyDiscriminator: false);
    }
}

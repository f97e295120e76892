using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pip;
using Pip.Torch;
using Pip.Torch.Pruning;

namespace Pip.Torch
{
    /// <summary>Builder extensions that set one of Pip.Torch's importance metrics (all need a <see cref="TorchCausalLM"/>).</summary>
    public static class TorchMetricPipelineBuilderExtensions
    {
        /// <summary>Uses PIP's PertImport (gradient difference between each text and its perturbed twin).</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="options">The options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
        public static PipelineBuilder UsePertImportMetric(this PipelineBuilder builder, TorchMetricOptions? options = null) =>
            Use(builder, TorchMetricConstants.PertImport, options, TorchMetrics.Create);

        /// <summary>Uses the plain gradient norm per parameter (PIP's "iteration only" ablation).</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="options">The options, or null for the defaults.</param>
        public static PipelineBuilder UseGradientNormMetric(this PipelineBuilder builder, TorchMetricOptions? options = null) =>
            Use(builder, TorchMetricConstants.GradientNorm, options, TorchMetrics.Create);

        /// <summary>Uses Taylor importance Σ|w·∂L/∂w| (Shortened LLaMA Taylor+).</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="options">The options, or null for the defaults.</param>
        public static PipelineBuilder UseTaylorMetric(this PipelineBuilder builder, TorchMetricOptions? options = null) =>
            Use(builder, TorchMetricConstants.Taylor, options, TorchMetrics.Create);

        /// <summary>Uses mean weight magnitude.</summary>
        /// <param name="builder">The builder.</param>
        public static PipelineBuilder UseMagnitudeMetric(this PipelineBuilder builder) =>
            Use(builder, TorchMetricConstants.Magnitude, null, TorchMetrics.Create);

        /// <summary>Uses ShortGPT's Block Influence.</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="options">The options, or null for the defaults.</param>
        public static PipelineBuilder UseBlockInfluenceMetric(this PipelineBuilder builder, TorchMetricOptions? options = null) =>
            Use(builder, TorchMetricConstants.BlockInfluence, options, TorchMetrics.Create);

        /// <summary>Uses a metric by name: one of Pip.Torch's (<see cref="TorchMetrics.Names"/>) or Pip.Core's (<c>random</c>, <c>perplexity-drop</c>).</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="name">The metric's name.</param>
        /// <param name="options">Options of Pip.Torch's metrics, or null for the defaults.</param>
        /// <exception cref="ArgumentException">The name is unknown; the message lists the known ones.</exception>
        public static PipelineBuilder UseMetric(this PipelineBuilder builder, string name, TorchMetricOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(builder);
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            return name switch
            {
                MetricConstants.Random => builder.UseRandomMetric(),
                MetricConstants.PerplexityDrop => builder.UsePerplexityDropMetric(new PerplexityDropMetricOptions { MaxTokensPerSample = (options ?? new()).MaxTokens }),
                _ when TorchMetrics.Names.Contains(name) => Use(builder, name, options, TorchMetrics.Create),
                _ => throw new ArgumentException($"Unknown metric '{name}'; use one of {string.Join(", ", TorchMetrics.AllNames)}.", nameof(name)),
            };
        }

        private static PipelineBuilder Use(PipelineBuilder builder, string name, TorchMetricOptions? options, Func<string, TorchMetricOptions, IImportanceMetric> create)
        {
            ArgumentNullException.ThrowIfNull(builder);
            var copy = (options ?? new TorchMetricOptions()).Clone();
            return builder.UseMetric(name, copy, () => create(name, copy));
        }
    }

    /// <summary>Creates Pip.Torch's importance metrics by name.</summary>
    public static class TorchMetrics
    {
        /// <summary>Names of Pip.Torch's metrics.</summary>
        public static IReadOnlyList<string> Names { get; } =
        [
            TorchMetricConstants.PertImport, TorchMetricConstants.GradientNorm, TorchMetricConstants.Taylor,
            TorchMetricConstants.Magnitude, TorchMetricConstants.BlockInfluence,
        ];

        /// <summary>Every built-in metric name, Pip.Core's included.</summary>
        public static IReadOnlyList<string> AllNames { get; } = [.. Names, MetricConstants.PerplexityDrop, MetricConstants.Random];

        /// <summary>Creates one of Pip.Torch's metrics.</summary>
        /// <param name="name">One of <see cref="Names"/>.</param>
        /// <param name="options">Its options.</param>
        /// <exception cref="ArgumentException">The name is not one of <see cref="Names"/>.</exception>
        public static IImportanceMetric Create(string name, TorchMetricOptions options)
        {
            ArgumentNullException.ThrowIfNull(options);
            return name switch
            {
                TorchMetricConstants.PertImport => new PerturbationImportanceMetric(Norms.Get(options.Norm), options.Aggregation, options.MaxTokens, options.RecomputeActivations),
                TorchMetricConstants.GradientNorm => new GradientNormMetric(Norms.Get(options.Norm), options.MaxTokens, options.RecomputeActivations),
                TorchMetricConstants.Taylor => new TaylorMetric(options.MaxTokens, options.RecomputeActivations),
                TorchMetricConstants.Magnitude => new MagnitudeMetric(),
                TorchMetricConstants.BlockInfluence => new BlockInfluenceMetric(options.MaxTokens),
                _ => throw new ArgumentException($"Unknown Pip.Torch metric '{name}'; use one of {string.Join(", ", Names)}.", nameof(name)),
            };
        }
    }
}

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers Pip.Torch's importance metrics in a service container.</summary>
    public static class PipTorchServiceCollectionExtensions
    {
        /// <summary>
        /// Registers <c>pip</c>, <c>gradient</c>, <c>taylor</c>, <c>magnitude</c> and <c>block-influence</c>. The norm is
        /// <see cref="PipelineOptions.Norm"/> of the <see cref="PipOptions"/>; the rest comes from <see cref="TorchMetricOptions"/>.
        /// </summary>
        /// <param name="builder">The builder returned by <c>AddPip</c>.</param>
        /// <param name="configure">Configures the metrics' options, or null.</param>
        public static IPipBuilder AddTorchMetrics(this IPipBuilder builder, Action<TorchMetricOptions>? configure = null)
        {
            ArgumentNullException.ThrowIfNull(builder);
            var options = builder.Services.AddOptions<TorchMetricOptions>().ValidateDataAnnotations().ValidateOnStart();
            if (configure is not null) options.Configure(configure);
            foreach (string name in TorchMetrics.Names)
            {
                builder.AddMetric(sp =>
                {
                    var torch = sp.GetRequiredService<IOptions<TorchMetricOptions>>().Value.Clone();
                    torch.Norm = sp.GetRequiredService<IOptions<PipOptions>>().Value.Norm;
                    return TorchMetrics.Create(name, torch);
                });
            }

            return builder;
        }
    }
}

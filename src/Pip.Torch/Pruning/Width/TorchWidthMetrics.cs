using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pip;
using Pip.Torch.Pruning.Width;

namespace Pip.Torch.Pruning.Width
{
    /// <summary>Creates Pip.Torch's width importance metrics by name.</summary>
    public static class TorchWidthMetrics
    {
        /// <summary>Names of Pip.Torch's width metrics.</summary>
        public static IReadOnlyList<string> Names { get; } =
        [
            WidthMetricConstants.Taylor, WidthMetricConstants.TaylorSecond, WidthMetricConstants.TaylorMix, WidthMetricConstants.TaylorVector,
            WidthMetricConstants.WandaSp, WidthMetricConstants.Flap, WidthMetricConstants.Magnitude,
        ];

        /// <summary>Every built-in width metric name, Pip.Core's <c>random</c> included.</summary>
        public static IReadOnlyList<string> AllNames { get; } = [.. Names, WidthConstants.RandomMetric];

        /// <summary>Creates a built-in width metric (Pip.Torch's, or <c>random</c>).</summary>
        /// <param name="name">One of <see cref="AllNames"/>.</param>
        /// <param name="options">Its options, or null for the defaults.</param>
        /// <exception cref="ArgumentException">The name is unknown; the message lists the known ones.</exception>
        public static IWidthImportanceMetric Create(string name, WidthMetricOptions? options = null) => name switch
        {
            WidthMetricConstants.Taylor => new TaylorWidthMetric(TaylorWidthOrder.First, options),
            WidthMetricConstants.TaylorSecond => new TaylorWidthMetric(TaylorWidthOrder.Second, options),
            WidthMetricConstants.TaylorMix => new TaylorWidthMetric(TaylorWidthOrder.Mix, options),
            WidthMetricConstants.TaylorVector => new TaylorWidthMetric(TaylorWidthOrder.Vector, options),
            WidthMetricConstants.WandaSp => new WandaSpWidthMetric(options),
            WidthMetricConstants.Flap => new FlapWidthMetric(options),
            WidthMetricConstants.Magnitude => new MagnitudeWidthMetric(options),
            WidthConstants.RandomMetric => new RandomWidthMetric(),
            _ => throw new ArgumentException($"Unknown width metric '{name}'; use one of {string.Join(", ", AllNames)}.", nameof(name)),
        };
    }

    /// <summary>Builder extensions that set one of the built-in width metrics.</summary>
    public static class TorchWidthPipelineBuilderExtensions
    {
        /// <summary>Uses a built-in width metric by name (<see cref="TorchWidthMetrics.AllNames"/>); its options are validated by <see cref="WidthPipelineBuilder.Build"/> and recorded in the report.</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="name">The metric's name.</param>
        /// <param name="options">Its options, or null for the defaults.</param>
        /// <exception cref="ArgumentException">The name is unknown.</exception>
        public static WidthPipelineBuilder UseWidthMetric(this WidthPipelineBuilder builder, string name, WidthMetricOptions? options = null)
        {
            ArgumentNullException.ThrowIfNull(builder);
            ArgumentException.ThrowIfNullOrWhiteSpace(name);
            if (!TorchWidthMetrics.AllNames.Contains(name))
                throw new ArgumentException($"Unknown width metric '{name}'; use one of {string.Join(", ", TorchWidthMetrics.AllNames)}.", nameof(name));
            if (name == WidthConstants.RandomMetric) return builder.UseRandomMetric();
            var copy = (options ?? new WidthMetricOptions()).Clone();
            return builder.UseMetric(name, copy, () => TorchWidthMetrics.Create(name, copy));
        }
    }
}

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers Pip.Torch's width importance metrics in a service container.</summary>
    public static class PipTorchWidthServiceCollectionExtensions
    {
        /// <summary>
        /// Registers the width metrics <c>taylor</c>, <c>taylor-second</c>, <c>taylor-mix</c>, <c>taylor-vector</c>,
        /// <c>wanda-sp</c>, <c>flap</c> and <c>magnitude</c> (plus Pip.Core's <c>random</c>), with
        /// <see cref="WidthMetricOptions"/>; a user's own <see cref="IWidthImportanceMetric"/> is added with
        /// <c>AddWidthMetric</c> and found by its name like these.
        /// </summary>
        /// <param name="builder">The builder returned by <c>AddPip</c>.</param>
        /// <param name="configure">Configures the metrics' options, or null.</param>
        public static IPipBuilder AddTorchWidthMetrics(this IPipBuilder builder, Action<WidthMetricOptions>? configure = null)
        {
            ArgumentNullException.ThrowIfNull(builder);
            var options = builder.Services.AddOptions<WidthMetricOptions>().ValidateDataAnnotations().ValidateOnStart();
            if (configure is not null) options.Configure(configure);
            builder.AddWidthPruning();
            foreach (string name in TorchWidthMetrics.Names)
            {
                builder.AddWidthMetric(sp => TorchWidthMetrics.Create(name, sp.GetRequiredService<IOptions<WidthMetricOptions>>().Value));
            }

            return builder;
        }
    }
}

using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pip;

namespace Pip
{
    /// <summary>Finds the registered width importance metrics by name.</summary>
    public interface IWidthImportanceMetricProvider
    {
        /// <summary>The names of the registered width metrics, sorted.</summary>
        IReadOnlyList<string> Names { get; }

        /// <summary>Gets a width metric by name (case-insensitive).</summary>
        /// <param name="name">The metric's name.</param>
        /// <exception cref="KeyNotFoundException">No width metric has that name; the message lists the registered names.</exception>
        IWidthImportanceMetric GetMetric(string name);

        /// <summary>Finds a width metric by name (case-insensitive).</summary>
        /// <param name="name">The metric's name.</param>
        /// <param name="metric">The metric, when found.</param>
        bool TryGetMetric(string name, [NotNullWhen(true)] out IWidthImportanceMetric? metric);
    }

    /// <summary>Builds width-pruning pipelines from the container's width metrics and <see cref="PipOptions"/> (<see cref="PipOptions.Width"/>).</summary>
    public interface IWidthPruningPipelineFactory
    {
        /// <summary>Builds a width pipeline.</summary>
        /// <param name="metricName">The width metric's name, or null for <see cref="PipOptions.WidthMetric"/>.</param>
        /// <exception cref="KeyNotFoundException">The metric is not registered.</exception>
        WidthPruningPipeline Create(string? metricName = null);
    }

    /// <summary>The width metrics of the container, by name; when two share a name, the last registered wins.</summary>
    internal sealed class WidthImportanceMetricProvider : IWidthImportanceMetricProvider
    {
        private readonly Dictionary<string, IWidthImportanceMetric> _metrics = new(StringComparer.OrdinalIgnoreCase);

        public WidthImportanceMetricProvider(IEnumerable<IWidthImportanceMetric> metrics)
        {
            foreach (IWidthImportanceMetric metric in metrics)
            {
                _metrics[metric.Name] = metric;
            }

            Names = [.. _metrics.Keys.Order(StringComparer.OrdinalIgnoreCase)];
        }

        public IReadOnlyList<string> Names { get; }

        public IWidthImportanceMetric GetMetric(string name)
        {
            ArgumentNullException.ThrowIfNull(name);
            return TryGetMetric(name, out IWidthImportanceMetric? metric)
                ? metric
                : throw new KeyNotFoundException($"No width importance metric named '{name}' is registered. Registered: {(Names.Count == 0 ? "none" : string.Join(", ", Names))}. Register one with AddPip().AddWidthMetric(...).");
        }

        public bool TryGetMetric(string name, [NotNullWhen(true)] out IWidthImportanceMetric? metric) =>
            _metrics.TryGetValue(name ?? string.Empty, out metric);
    }

    /// <summary>Builds width pipelines from the container.</summary>
    internal sealed class WidthPruningPipelineFactory(IOptions<PipOptions> options, IWidthImportanceMetricProvider metrics, ILoggerFactory? loggerFactory = null) : IWidthPruningPipelineFactory
    {
        // Reading Value validates the options now, not at the first run.
        private readonly PipOptions _options = options.Value;

        public WidthPruningPipeline Create(string? metricName = null) =>
            new WidthPipelineBuilder()
                .Configure(_options.ClonePipelineOptions())
                .ConfigureWidth(_options.Width.Clone())
                .UseMetric(metrics.GetMetric(metricName ?? _options.WidthMetric))
                .UseLoggerFactory(loggerFactory)
                .Build();
    }
}

namespace Microsoft.Extensions.DependencyInjection
{
    /// <summary>Registers width importance metrics with Pip; a user's own metric is registered exactly like a built-in one and is found by its name.</summary>
    public static class PipWidthBuilderExtensions
    {
        /// <summary>
        /// Adds width pruning: the <c>random</c> width metric, an <see cref="IWidthImportanceMetricProvider"/> and an
        /// <see cref="IWidthPruningPipelineFactory"/>. Called by the <c>AddWidthMetric</c> methods; safe to call more than once.
        /// </summary>
        /// <param name="builder">The builder returned by <c>AddPip</c>.</param>
        public static IPipBuilder AddWidthPruning(this IPipBuilder builder)
        {
            ArgumentNullException.ThrowIfNull(builder);
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IWidthImportanceMetric, RandomWidthMetric>());
            builder.Services.TryAddSingleton<IWidthImportanceMetricProvider, WidthImportanceMetricProvider>();
            builder.Services.TryAddSingleton<IWidthPruningPipelineFactory, WidthPruningPipelineFactory>();
            return builder;
        }

        /// <summary>Registers a width metric type as a singleton (once per type).</summary>
        /// <typeparam name="TMetric">The metric type.</typeparam>
        /// <param name="builder">The builder.</param>
        public static IPipBuilder AddWidthMetric<TMetric>(this IPipBuilder builder)
            where TMetric : class, IWidthImportanceMetric
        {
            builder.AddWidthPruning();
            builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IWidthImportanceMetric, TMetric>());
            return builder;
        }

        /// <summary>Registers a width metric instance.</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="metric">The metric.</param>
        public static IPipBuilder AddWidthMetric(this IPipBuilder builder, IWidthImportanceMetric metric)
        {
            ArgumentNullException.ThrowIfNull(metric);
            builder.AddWidthPruning();
            builder.Services.AddSingleton(metric);
            return builder;
        }

        /// <summary>Registers a width metric made by a factory (a singleton).</summary>
        /// <param name="builder">The builder.</param>
        /// <param name="factory">Makes the metric.</param>
        public static IPipBuilder AddWidthMetric(this IPipBuilder builder, Func<IServiceProvider, IWidthImportanceMetric> factory)
        {
            ArgumentNullException.ThrowIfNull(factory);
            builder.AddWidthPruning();
            builder.Services.AddSingleton(factory);
            return builder;
        }
    }
}

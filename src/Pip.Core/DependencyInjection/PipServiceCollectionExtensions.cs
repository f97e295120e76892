using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Pip;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Pip's components further (metrics, perturbers, strategies, filters).</summary>
public interface IPipBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Adds Pip to a service collection.</summary>
public static class PipServiceCollectionExtensions
{
    /// <summary>
    /// Adds Pip: <see cref="PipOptions"/> (validated by DataAnnotations and Pip's cross-field validator, on start and
    /// when first read), the built-in metrics (<c>random</c>, <c>perplexity-drop</c>), an
    /// <see cref="IImportanceMetricProvider"/> and an <see cref="IPruningPipelineFactory"/>. Safe to call more than once.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures the options, or null.</param>
    /// <returns>A builder to register more metrics, perturbers, strategies and filters.</returns>
    public static IPipBuilder AddPip(this IServiceCollection services, Action<PipOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        OptionsBuilder<PipOptions> options = services.AddOptions<PipOptions>();
        if (configure is not null)
        {
            options.Configure(configure);
        }

        options.ValidateDataAnnotations().ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PipOptions>, PipOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IImportanceMetric, RandomMetric>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IImportanceMetric, PerplexityDropMetric>(
            sp => new PerplexityDropMetric(sp.GetRequiredService<IOptions<PipOptions>>().Value.PerplexityDrop.Clone())));
        services.TryAddSingleton<IImportanceMetricProvider, ImportanceMetricProvider>();
        services.TryAddSingleton<IPruningPipelineFactory, PruningPipelineFactory>();
        return new PipBuilder(services);
    }

    private sealed class PipBuilder(IServiceCollection services) : IPipBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}

/// <summary>Registers metrics, perturbers, strategies and filters with Pip; a user's own component is registered exactly like a built-in one.</summary>
public static class PipBuilderExtensions
{
    /// <summary>Changes <see cref="PipOptions"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Changes the options.</param>
    public static IPipBuilder Configure(this IPipBuilder builder, Action<PipOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(configure);
        builder.Services.Configure(configure);
        return builder;
    }

    /// <summary>Registers a metric type as a singleton (once per type); it is found by its <see cref="IImportanceMetric.Name"/>.</summary>
    /// <typeparam name="TMetric">The metric type.</typeparam>
    /// <param name="builder">The builder.</param>
    public static IPipBuilder AddMetric<TMetric>(this IPipBuilder builder)
        where TMetric : class, IImportanceMetric
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IImportanceMetric, TMetric>());
        return builder;
    }

    /// <summary>Registers a metric instance; it is found by its <see cref="IImportanceMetric.Name"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="metric">The metric.</param>
    public static IPipBuilder AddMetric(this IPipBuilder builder, IImportanceMetric metric)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(metric);
        builder.Services.AddSingleton(metric);
        return builder;
    }

    /// <summary>Registers a metric made by a factory (a singleton); it is found by its <see cref="IImportanceMetric.Name"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="factory">Makes the metric.</param>
    public static IPipBuilder AddMetric(this IPipBuilder builder, Func<IServiceProvider, IImportanceMetric> factory)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(factory);
        builder.Services.AddSingleton(factory);
        return builder;
    }

    /// <summary>Registers a perturber type as a singleton (once per type); select it with <see cref="PipOptions.Perturber"/>.</summary>
    /// <typeparam name="TPerturber">The perturber type.</typeparam>
    /// <param name="builder">The builder.</param>
    public static IPipBuilder AddPerturber<TPerturber>(this IPipBuilder builder)
        where TPerturber : class, IPerturber
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPerturber, TPerturber>());
        return builder;
    }

    /// <summary>Registers a perturber instance; select it with <see cref="PipOptions.Perturber"/>.</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="perturber">The perturber.</param>
    public static IPipBuilder AddPerturber(this IPipBuilder builder, IPerturber perturber)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(perturber);
        builder.Services.AddSingleton(perturber);
        return builder;
    }

    /// <summary>
    /// Makes twins with the chat-client perturber (<see cref="PipOptions.Perturber"/> = <c>chat</c>): a chat model writes
    /// each twin, checked, with the lexicon perturber as fallback. The <see cref="Microsoft.Extensions.AI.IChatClient"/> is
    /// the container's (register one, for example with Microsoft.Extensions.AI's <c>AddChatClient</c>).
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="configure">Changes <see cref="PipOptions.ChatClient"/>, or null.</param>
    public static IPipBuilder UseChatClientPerturber(this IPipBuilder builder, Action<ChatClientPerturberOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.Configure<PipOptions>(o =>
        {
            o.Perturber = ChatClientPerturberConstants.Name;
            configure?.Invoke(o.ChatClient);
        });
        return builder;
    }

    /// <summary>Registers <paramref name="chatClient"/> (unless an <see cref="Microsoft.Extensions.AI.IChatClient"/> is registered already) and makes twins with it (see <see cref="UseChatClientPerturber(IPipBuilder, Action{ChatClientPerturberOptions}?)"/>).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="chatClient">The chat model.</param>
    /// <param name="configure">Changes <see cref="PipOptions.ChatClient"/>, or null.</param>
    public static IPipBuilder UseChatClientPerturber(this IPipBuilder builder, Microsoft.Extensions.AI.IChatClient chatClient, Action<ChatClientPerturberOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(chatClient);
        builder.Services.TryAddSingleton(chatClient);
        return builder.UseChatClientPerturber(configure);
    }

    /// <summary>Registers a strategy type as a singleton (once per type); select it with <see cref="PipOptions.Strategy"/>.</summary>
    /// <typeparam name="TStrategy">The strategy type.</typeparam>
    /// <param name="builder">The builder.</param>
    public static IPipBuilder AddStrategy<TStrategy>(this IPipBuilder builder)
        where TStrategy : class, IPruningStrategy
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IPruningStrategy, TStrategy>());
        return builder;
    }

    /// <summary>Registers a candidate filter type as a singleton (once per type); registered filters run after the guard and the discriminator, in registration order.</summary>
    /// <typeparam name="TFilter">The filter type.</typeparam>
    /// <param name="builder">The builder.</param>
    public static IPipBuilder AddFilter<TFilter>(this IPipBuilder builder)
        where TFilter : class, ICandidateFilter
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<ICandidateFilter, TFilter>());
        return builder;
    }
}

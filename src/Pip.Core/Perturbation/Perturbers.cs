using Pip.Internal;

namespace Pip;

/// <summary>Creates the built-in perturbers outside a pipeline (to inspect twins, say).</summary>
public static class Perturbers
{
    /// <summary>Creates a lexicon perturber.</summary>
    /// <param name="options">Its options; the lexicon comes from them (see <see cref="LexiconPerturberOptions"/>) or, when they name none, from <paramref name="corpus"/>.</param>
    /// <param name="corpus">Texts whose words make the lexicon when the options name no lexicon source, or null.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem is listed).</exception>
    /// <exception cref="ArgumentException">The options name no lexicon source and no corpus is given.</exception>
    public static IPerturber CreateLexicon(LexiconPerturberOptions options, IEnumerable<string>? corpus = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        if (options.Lexicon is null && options.WordListPath is null && options.CorpusPath is null && corpus is null)
        {
            throw new ArgumentException("The lexicon perturber needs a lexicon: set Lexicon, WordListPath or CorpusPath in the options, or pass a corpus.", nameof(corpus));
        }

        var samples = (corpus ?? []).Select((t, i) => new CalibrationSample(i, t)).ToList();
        return new LexiconPerturber(options, LexiconPerturber.ResolveLexicon(options, new PerturberContext(samples, null)));
    }

    /// <summary>Creates a random-character perturber (plain edits, no lexicon).</summary>
    /// <param name="options">Its options, or null for the defaults.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem is listed).</exception>
    public static IPerturber CreateRandomChar(RandomCharPerturberOptions? options = null)
    {
        options ??= new RandomCharPerturberOptions();
        Validate(options);
        return new RandomCharPerturber(options);
    }

    /// <summary>Creates a chat-client perturber: twins written by a chat model, checked, with a rule-based fallback.</summary>
    /// <param name="chatClient">The chat model.</param>
    /// <param name="fallback">Makes the twin when the model gives no valid one (see <see cref="CreateLexicon"/>, <see cref="CreateRandomChar"/>).</param>
    /// <param name="options">Its options, or null for the defaults.</param>
    /// <param name="logger">Logs fallbacks (Warning) and each answer (Debug), or null.</param>
    /// <exception cref="Microsoft.Extensions.Options.OptionsValidationException">The options are invalid (every problem is listed).</exception>
    public static IPerturber CreateChatClient(Microsoft.Extensions.AI.IChatClient chatClient, IPerturber fallback, ChatClientPerturberOptions? options = null, Microsoft.Extensions.Logging.ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(chatClient);
        ArgumentNullException.ThrowIfNull(fallback);
        options ??= new ChatClientPerturberOptions();
        Validate(options);
        return new ChatClientPerturber(chatClient, fallback, options, logger);
    }

    private static void Validate(object options)
    {
        var errors = new List<string>();
        OptionsValidation.AddAllErrors(options, options.GetType().Name, errors);
        OptionsValidation.ThrowIfAny(errors, options.GetType(), options.GetType().Name);
    }
}

/// <summary>Builder extensions that set the pipeline's perturber.</summary>
public static class PerturbationPipelineBuilderExtensions
{
    /// <summary>Uses the lexicon perturber (real-word edits). Its lexicon is built when a run starts (see <see cref="LexiconPerturberOptions"/>).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder UseLexiconPerturber(this PipelineBuilder builder, LexiconPerturberOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new LexiconPerturberOptions();
        return builder.UsePerturber(PerturbationConstants.LexiconPerturberName, options, () =>
        {
            var snapshot = (LexiconPerturberOptions)options.Clone();
            return (context, ct) => new LexiconPerturber(snapshot, LexiconPerturber.ResolveLexicon(snapshot, context, ct));
        });
    }

    /// <summary>Uses the random-character perturber (plain edits, no lexicon).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder UseRandomCharPerturber(this PipelineBuilder builder, RandomCharPerturberOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        options ??= new RandomCharPerturberOptions();
        return builder.UsePerturber(PerturbationConstants.RandomCharPerturberName, options, () =>
        {
            var perturber = new RandomCharPerturber(options);
            return (_, _) => perturber;
        });
    }
}

using System.ComponentModel.DataAnnotations;
using Pip.Internal;

namespace Pip;

/// <summary>Names, defaults and prompt templates of the chat-client perturber (twins written by an LLM).</summary>
public static class ChatClientPerturberConstants
{
    /// <summary>Name of the chat-client perturber (select it with <see cref="PipOptions.Perturber"/>).</summary>
    public const string Name = "chat";

    /// <summary>The placeholder of a prompt template that the sample's text replaces.</summary>
    public const string TextPlaceholder = "{text}";

    /// <summary>Default number of requests per twin before falling back to the rule-based perturber: 2.</summary>
    public const int DefaultMaxAttempts = 2;

    /// <summary>Largest allowed <see cref="ChatClientPerturberOptions.MaxAttempts"/>: 10.</summary>
    public const int MaxAttempts = 10;

    /// <summary>Default shortest word (in letters) the model may edit: <see cref="PerturbationConstants.DefaultMinWordLength"/>.</summary>
    public const int DefaultMinWordLength = PerturbationConstants.DefaultMinWordLength;

    /// <summary>Default sampling temperature: 0 (as repeatable as the model allows).</summary>
    public const float DefaultTemperature = 0f;

    /// <summary>Default time limit of one request: 60 seconds.</summary>
    public static TimeSpan DefaultRequestTimeout { get; } = TimeSpan.FromSeconds(60);

    /// <summary>The edit kinds asked for by default: all four.</summary>
    public static IReadOnlyList<PerturbationKind> DefaultKinds { get; } =
        [PerturbationKind.Swap, PerturbationKind.Replace, PerturbationKind.Insert, PerturbationKind.Delete];

    /// <summary>The default system prompt: the rules every answer must follow.</summary>
    public const string DefaultSystemPrompt =
        "You make minimally perturbed versions of English texts. You change exactly one word of the text by exactly one "
        + "character edit so that it becomes a different, real English word and the meaning of the text changes, while "
        + "the text stays grammatical. Everything else (every other word, the spacing, the punctuation, the line breaks) "
        + "stays exactly as it is. You answer with the changed text only: no quotes, no explanation, no preamble.";

    /// <summary>The default prompt template of a swap: two adjacent letters exchanged ("later" → "alter").</summary>
    public const string SwapTemplate =
        "Swap two adjacent letters in one word of the text below so that the word becomes another real word and the "
        + "meaning of the text changes (for example \"later\" becomes \"alter\", \"form\" becomes \"from\"). Change nothing "
        + "else. Reply with the changed text only.\n\nText:\n" + TextPlaceholder;

    /// <summary>The default prompt template of a replacement: one letter replaced ("happy" → "nappy").</summary>
    public const string ReplaceTemplate =
        "Replace one letter in one word of the text below by another letter so that the word becomes another real word "
        + "and the meaning of the text changes (for example \"happy\" becomes \"nappy\", \"cold\" becomes \"bold\"). Change "
        + "nothing else. Reply with the changed text only.\n\nText:\n" + TextPlaceholder;

    /// <summary>The default prompt template of an insertion: one letter inserted ("host" → "ghost").</summary>
    public const string InsertTemplate =
        "Insert one letter into one word of the text below so that the word becomes another real word and the meaning of "
        + "the text changes (for example \"host\" becomes \"ghost\", \"car\" becomes \"cart\"). Change nothing else. Reply "
        + "with the changed text only.\n\nText:\n" + TextPlaceholder;

    /// <summary>The default prompt template of a deletion: one letter deleted ("bread" → "bred").</summary>
    public const string DeleteTemplate =
        "Delete one letter from one word of the text below so that the word becomes another real word and the meaning of "
        + "the text changes (for example \"bread\" becomes \"bred\", \"plane\" becomes \"pane\"). Change nothing else. Reply "
        + "with the changed text only.\n\nText:\n" + TextPlaceholder;

    /// <summary>The default prompt template of <paramref name="kind"/>.</summary>
    /// <param name="kind">The edit kind.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="kind"/> is not a defined kind.</exception>
    public static string DefaultTemplate(PerturbationKind kind) => kind switch
    {
        PerturbationKind.Swap => SwapTemplate,
        PerturbationKind.Replace => ReplaceTemplate,
        PerturbationKind.Insert => InsertTemplate,
        PerturbationKind.Delete => DeleteTemplate,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown perturbation kind."),
    };
}

/// <summary>Options of the chat-client perturber, which asks an <c>IChatClient</c> (an LLM) to write each twin.</summary>
/// <remarks>
/// <para>Each twin asks for one edit of one kind, drawn from <see cref="Kinds"/> with the twin's seed. The answer is
/// accepted only when it is the original text with exactly one word changed by exactly one edit of that kind
/// (letters compared without case); otherwise the request is repeated up to <see cref="MaxAttempts"/> times, then the
/// rule-based fallback perturber makes the twin.</para>
/// <para>Answers: surrounding white space is always ignored; with <see cref="StripQuotes"/>, so is one pair of quotes
/// or a Markdown code fence around the whole answer (models add them often). Any other extra text — "Here is the
/// text: ...", an explanation after it — makes the answer invalid.</para>
/// </remarks>
public sealed class ChatClientPerturberOptions : IPipOptionsCheck
{
    /// <summary>The edit kinds asked for; each twin asks for one, drawn with its seed. Default: all four (<see cref="ChatClientPerturberConstants.DefaultKinds"/>).</summary>
    [Required]
    [MinLength(1)]
    public PerturbationKind[] Kinds { get; set; } = [.. ChatClientPerturberConstants.DefaultKinds];

    /// <summary>Shortest word (in letters, before the edit) the answer may edit. Default <see cref="ChatClientPerturberConstants.DefaultMinWordLength"/>.</summary>
    [Range(1, PerturbationConstants.MaxWordLength)]
    public int MinWordLength { get; set; } = ChatClientPerturberConstants.DefaultMinWordLength;

    /// <summary>Requests per twin before falling back (an invalid answer or a failed request counts as one). Default <see cref="ChatClientPerturberConstants.DefaultMaxAttempts"/>.</summary>
    [Range(1, ChatClientPerturberConstants.MaxAttempts)]
    public int MaxAttempts { get; set; } = ChatClientPerturberConstants.DefaultMaxAttempts;

    /// <summary>The model to ask (passed as <c>ChatOptions.ModelId</c>), or null for the client's default.</summary>
    public string? ModelId { get; set; }

    /// <summary>Sampling temperature, or null for the client's default. Default <see cref="ChatClientPerturberConstants.DefaultTemperature"/>.</summary>
    [Range(0.0, 2.0)]
    public float? Temperature { get; set; } = ChatClientPerturberConstants.DefaultTemperature;

    /// <summary>Time limit of one request (a request that takes longer counts as failed). Default <see cref="ChatClientPerturberConstants.DefaultRequestTimeout"/>.</summary>
    public TimeSpan RequestTimeout { get; set; } = ChatClientPerturberConstants.DefaultRequestTimeout;

    /// <summary>Whether to remove one pair of quotes or a Markdown code fence around the whole answer. Default true.</summary>
    public bool StripQuotes { get; set; } = true;

    /// <summary>The system prompt. Default <see cref="ChatClientPerturberConstants.DefaultSystemPrompt"/>.</summary>
    [Required]
    public string SystemPrompt { get; set; } = ChatClientPerturberConstants.DefaultSystemPrompt;

    /// <summary>
    /// Prompt templates by kind, each with the placeholder <see cref="ChatClientPerturberConstants.TextPlaceholder"/>;
    /// a kind without an entry uses <see cref="ChatClientPerturberConstants.DefaultTemplate"/>. Default: empty.
    /// </summary>
    [Required]
    public Dictionary<PerturbationKind, string> PromptTemplates { get; set; } = [];

    /// <summary>
    /// Known words, or null. With a lexicon, <see cref="PerturbationEdit.IsRealWord"/> says whether the new word is in
    /// it; without one, an accepted edit counts as a real word (the model was asked for one; it is not checked).
    /// </summary>
    public Lexicon? Lexicon { get; set; }

    /// <summary>Whether an answer whose new word is not in <see cref="Lexicon"/> is invalid. Needs a lexicon. Default false.</summary>
    public bool RequireRealWord { get; set; }

    /// <summary>Whether to remember each twin by text and seed, so that asking again gives the same twin without a request. Default true.</summary>
    public bool CacheTwins { get; set; } = true;

    /// <summary>The prompt template of <paramref name="kind"/>.</summary>
    /// <param name="kind">The edit kind.</param>
    public string TemplateFor(PerturbationKind kind) =>
        PromptTemplates is not null && PromptTemplates.TryGetValue(kind, out string? template) ? template : ChatClientPerturberConstants.DefaultTemplate(kind);

    void IPipOptionsCheck.AddErrors(List<string> errors, string path)
    {
        foreach (PerturbationKind kind in Kinds ?? [])
        {
            if (!Enum.IsDefined(kind))
            {
                errors.Add($"{path}.{nameof(Kinds)}: {(int)kind} is not a perturbation kind (valid: {string.Join(", ", Enum.GetNames<PerturbationKind>())}).");
            }
        }

        foreach ((PerturbationKind kind, string template) in PromptTemplates ?? [])
        {
            if (!Enum.IsDefined(kind))
            {
                errors.Add($"{path}.{nameof(PromptTemplates)}: {(int)kind} is not a perturbation kind.");
            }
            else if (template is null || !template.Contains(ChatClientPerturberConstants.TextPlaceholder, StringComparison.Ordinal))
            {
                errors.Add($"{path}.{nameof(PromptTemplates)}[{kind}]: the template must contain the placeholder {ChatClientPerturberConstants.TextPlaceholder}.");
            }
        }

        if (RequestTimeout <= TimeSpan.Zero && RequestTimeout != Timeout.InfiniteTimeSpan)
        {
            errors.Add($"{path}.{nameof(RequestTimeout)}: must be positive (or Timeout.InfiniteTimeSpan); got {RequestTimeout}.");
        }

        if (RequireRealWord && Lexicon is null)
        {
            errors.Add($"{path}.{nameof(RequireRealWord)}: needs a {nameof(Lexicon)} to check words against.");
        }
    }

    /// <summary>A copy whose later changes do not affect this one.</summary>
    internal ChatClientPerturberOptions Clone()
    {
        var copy = (ChatClientPerturberOptions)MemberwiseClone();
        copy.Kinds = Kinds is null ? null! : [.. Kinds];
        copy.PromptTemplates = PromptTemplates is null ? null! : new Dictionary<PerturbationKind, string>(PromptTemplates);
        return copy;
    }
}

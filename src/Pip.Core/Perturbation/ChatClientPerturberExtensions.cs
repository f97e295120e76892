using Microsoft.Extensions.AI;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Pip;

/// <summary>Builder extensions that make the pipeline's twins with a chat model.</summary>
public static class ChatClientPipelineBuilderExtensions
{
    /// <summary>
    /// Uses the chat-client perturber: twins written by <paramref name="chatClient"/>, checked, with the lexicon
    /// perturber as fallback (its lexicon is built when a run starts, see <see cref="LexiconPerturberOptions"/>). When
    /// <paramref name="options"/> name no <see cref="ChatClientPerturberOptions.Lexicon"/>, the fallback's lexicon
    /// decides <see cref="PerturbationEdit.IsRealWord"/> of the model's edits.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="chatClient">The chat model.</param>
    /// <param name="options">Its options, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    /// <param name="fallback">Options of the fallback lexicon perturber, or null for the defaults; validated by <see cref="PipelineBuilder.Build"/>.</param>
    public static PipelineBuilder UseChatClientPerturber(this PipelineBuilder builder, IChatClient chatClient, ChatClientPerturberOptions? options = null, LexiconPerturberOptions? fallback = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(chatClient);
        options ??= new ChatClientPerturberOptions();
        fallback ??= new LexiconPerturberOptions();
        return builder.UsePerturber(ChatClientPerturberConstants.Name, new ChatPerturberSettings(options, fallback), () =>
        {
            var snapshot = options.Clone();
            var fallbackSnapshot = (LexiconPerturberOptions)fallback.Clone();
            ILogger logger = builder.LoggerFactory?.CreateLogger<ChatClientPerturber>() ?? NullLogger<ChatClientPerturber>.Instance;
            return (context, ct) =>
            {
                var lexicon = new LexiconPerturber(fallbackSnapshot, LexiconPerturber.ResolveLexicon(fallbackSnapshot, context, ct));
                ChatClientPerturberOptions run = snapshot.Clone();
                run.Lexicon ??= lexicon.Lexicon;
                return new ChatClientPerturber(chatClient, lexicon, run, logger);
            };
        });
    }

    /// <summary>The chat perturber's options and its fallback's, validated and reported together.</summary>
    internal sealed class ChatPerturberSettings(ChatClientPerturberOptions chat, LexiconPerturberOptions fallback)
    {
        [Microsoft.Extensions.Options.ValidateObjectMembers]
        public ChatClientPerturberOptions Chat { get; } = chat;

        [Microsoft.Extensions.Options.ValidateObjectMembers]
        public LexiconPerturberOptions Fallback { get; } = fallback;
    }
}

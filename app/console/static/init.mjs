// GOV.UK Frontend and MoJ Frontend's components (service navigation's menu, buttons ...).
import { initAll } from '/console/assets/govuk/govuk-frontend.min.js';
initAll();
